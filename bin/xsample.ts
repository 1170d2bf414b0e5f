#!/usr/bin/env node
import '../sampler/nice-now.ts';
import { main } from '../sampler/cli.ts';

process.exitCode = await main(process.argv.slice(2));

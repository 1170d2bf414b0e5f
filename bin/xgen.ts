#!/usr/bin/env node
import { main } from './xgen-cli.ts';

process.exitCode = await main(process.argv.slice(2));

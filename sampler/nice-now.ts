/** Side effect only: lower this process's threads before anything else loads (see nice.ts). */
import { beNice, niceLevel } from './nice.ts';

beNice(niceLevel(process.argv.slice(2)));

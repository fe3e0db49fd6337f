// An analysis thread (core/threads.ts): parsing and analysing filed messages for the analysis worker.
import { serveTasks } from '../../core/threads.ts';
import { analysisTasks } from './analysis.ts';

serveTasks(analysisTasks);

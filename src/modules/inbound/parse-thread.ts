// A parsing thread (core/threads.ts): MIME parsing and search tokenising for inbound processing.
import { serveTasks } from '../../core/threads.ts';
import { parseTasks } from './parse.ts';

serveTasks(parseTasks);

// A signing thread (core/threads.ts): composing and DKIM-signing outbound messages.
import { serveTasks } from '../../core/threads.ts';
import { signingTasks } from './signing.ts';

serveTasks(signingTasks);

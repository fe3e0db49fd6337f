import { cpSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
let t=Date.now();
cpSync('/tmp/mr1/pgdata', '/tmp/mrcopy/pgdata', { recursive: true });
console.log('copy', Date.now()-t); t=Date.now();
const p = await PGlite.create('/tmp/mrcopy/pgdata');
await p.query('select count(*) from users');
console.log('open', Date.now()-t);

#!/usr/bin/env node
// Entry point. Node's compile cache (in the OS temp dir) makes later starts parse our modules and
// their dependencies from cached bytecode; it must be on before anything else is imported.
import module from 'node:module';

module.enableCompileCache?.();
await import('./cli.ts');

// AWS's Node.js runtimes start from an ES module, /var/runtime/index.mjs. sluice starts
// bootstrap.js (an ES module entry costs ~8 ms of every cold start) and gives user code what
// that entry would: no require.main, and this file in process.argv[1]. Started directly, this
// runs the same runtime.
import { createRequire } from 'node:module';

createRequire(import.meta.url)('./bootstrap.js');

#!/usr/bin/env node
// The command-line client, from the compiled sources (npm run build).
const { runCli } = require('../dist/client/main.js');
runCli(process.argv.slice(2)).then((code) => process.exit(code));

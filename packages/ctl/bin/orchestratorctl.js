#!/usr/bin/env node
// orchestratorctl's entry on PATH (node_modules/.bin, npx): it exists before
// the build, so npm links it at install time; the command is the built
// dist/main.js.
import '../dist/main.js';

export { buildProgram, type Io } from './cli.js';
export { OrchestratorClient } from './client.js';
export { CtlError } from './errors.js';
export { init, initReport, normaliseSan } from './init.js';
export { resolveConnection, localUrl } from './settings.js';

export { createApp, type AppDeps } from './api/app.js';
export { Provisioner, toView } from './api/provisioner.js';
export { NativeAttacher, type Attacher, type AttachResult, type AttachTarget } from './attach/native.js';
export { PipeworkAttacher } from './attach/pipework.js';
export { DhcpClients, SHIPPED_DHCLIENT_SCRIPT } from './attach/dhcp-client.js';
export { runAttachCommand } from './cli/attach-command.js';
export { hostVethName } from './attach/plan.js';
export { configSchema, loadConfig, type NetworkConfig, type UnionizeConfig } from './config.js';
export {
  DockerEngineClient,
  OWN_LABELS,
  containerCreateOptions,
  type ContainerInfo,
  type CreateSpec,
  type DockerClient,
} from './docker/docker-client.js';
export { AttachError, DockerError, ERROR_STATUS, UnionizeError, type ErrorCode } from './errors.js';

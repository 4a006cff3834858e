export {
  decodeRemoteWrite,
  isStaleMarker,
  MalformedRemoteWriteError,
  REMOTE_WRITE_PROTO,
  WriteRequestType,
  type RemoteWriteSample,
  type RemoteWriteValue,
} from './remote-write-decoder.js';
export {
  parseRemoteWriteSourceDefinition,
  RemoteWriteSource,
  remoteWriteSourceDefinitionSchema,
  type RemoteWriteSourceDefinition,
} from './remote-write-source.js';

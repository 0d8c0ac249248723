/** The public API of action-router as a library. */
export { App } from './app';
export type { AppOptions } from './app';
export { loadConfig, DEFAULTS } from './config/config';
export type { Config } from './config/config';
export { decodeTrigger } from './codec/decode';
export type { DecodeResult, EventIdentity } from './codec/decode';
export { portMessageJson, toPortMessage } from './codec/port-message';
export { parseLossless, pythonJson } from './model/lossless-json';
export type { PortRunMessage } from './codec/port-message';
export { portSignature, signatureHeaders, verifyPortSignature } from './invokers/sign';
export type { VerifyOptions, VerifyResult } from './invokers/sign';
export { verifyOrgMessageBody } from './invokers/kafka/org-message';
export { ErrorCodes, RouterError, RejectedEventError, BackendError, ConfigError } from './errors';
export type { ErrorCode } from './errors';
export type { ActionRun, FrozenRun, InvocationMethod, InvocationType } from './model/run';
export type { RunStatusUpdate, RunStatus } from './model/status';
export type { Invoker, InvocationContext, InvocationOutcome } from './invokers/invoker';

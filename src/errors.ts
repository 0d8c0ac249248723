/**
 * Every failure the router knows how to name. `code` is stable: it is the
 * dead-letter reason (`x-dlq-reason`) and a metrics label, so renaming one is
 * a breaking change. `retriable` is the only thing the retry logic reads.
 */
export const ErrorCodes = {
  /** Bytes are neither JSON nor Confluent-framed Avro. */
  DECODE_FAILED: 'DECODE_FAILED',
  /** Confluent-framed Avro arrived but no schema registry is configured. */
  REGISTRY_NOT_CONFIGURED: 'REGISTRY_NOT_CONFIGURED',
  /** The registry could not be reached or does not know the schema id. */
  REGISTRY_UNAVAILABLE: 'REGISTRY_UNAVAILABLE',
  /** The registry refused the router's own schema or the record written with it (a configuration problem). */
  REGISTRY_REJECTED: 'REGISTRY_REJECTED',
  /** A string holds a lone UTF-16 surrogate: no UTF-8 encoder (Port's agent included) can write it. */
  INVALID_UNICODE: 'INVALID_UNICODE',
  /** The event does not match the ActionRun Avro schema. */
  SCHEMA_INVALID: 'SCHEMA_INVALID',
  MISSING_RUN_ID: 'MISSING_RUN_ID',
  /** The run id breaks the API's rule (RUN_ID_PATTERN): such a run could never be read or reported on. */
  INVALID_RUN_ID: 'INVALID_RUN_ID',
  MISSING_ORG_ID: 'MISSING_ORG_ID',
  /** The run id already names a run of another org (run ids are global): the event touches nothing of that run. */
  RUN_ID_CONFLICT: 'RUN_ID_CONFLICT',
  /** The catalog is configured and does not define the action. */
  UNKNOWN_ACTION: 'UNKNOWN_ACTION',
  /** User inputs do not satisfy the action's `userInputs`. */
  INPUT_INVALID: 'INPUT_INVALID',
  /** The invocation type is not one the router knows at all. */
  UNKNOWN_INVOCATION: 'UNKNOWN_INVOCATION',
  /** The invocation type is known but no invoker is enabled for it. */
  UNSUPPORTED_INVOCATION: 'UNSUPPORTED_INVOCATION',
  /** An agent received a run whose Port signature does not verify. */
  SIGNATURE_INVALID: 'SIGNATURE_INVALID',
  /** The invocation method lacks a field its backend needs (url, repo...). */
  INVOCATION_INVALID: 'INVOCATION_INVALID',
  /** A webhook target resolved to an address the router refuses to call. */
  TARGET_FORBIDDEN: 'TARGET_FORBIDDEN',
  /** The backend answered with an error that retrying will not fix. */
  BACKEND_REJECTED: 'BACKEND_REJECTED',
  /** The backend failed in a way a retry may fix (5xx, 429, network). */
  BACKEND_UNAVAILABLE: 'BACKEND_UNAVAILABLE',
  /** A call or its retries ran past their deadline. */
  TIMEOUT: 'TIMEOUT',
  /** Work stopped because the router is shutting down. */
  ABORTED: 'ABORTED',
  /** Credentials for a backend are missing or refused. */
  AUTH_FAILED: 'AUTH_FAILED',
  CONFIG_INVALID: 'CONFIG_INVALID',
  /** The run's output (org-topic message) is larger than the broker accepts. */
  OUTPUT_TOO_LARGE: 'OUTPUT_TOO_LARGE',
  /** The broker refused the run's output for good (invalid record, topic authorization). */
  OUTPUT_REJECTED: 'OUTPUT_REJECTED',
  /** The run's status update can never be written (refused by the registry or the broker). */
  STATUS_REJECTED: 'STATUS_REJECTED',
  /** Handling the message failed unexpectedly (a bug): it is dead-lettered rather than blocking its partition. */
  INTERNAL_ERROR: 'INTERNAL_ERROR',
  /** An approved run's parked event cannot be read (APPROVAL_SECRET changed, or it was never parked). */
  APPROVAL_INVALID: 'APPROVAL_INVALID',
  /** The run store cannot answer now (its writer fails or lags, or a query ran past its budget). */
  STORE_UNAVAILABLE: 'STORE_UNAVAILABLE',
  /** An API or console request refused; its HTTP status and Port's envelope code travel with it (ApiError). */
  REQUEST_REFUSED: 'REQUEST_REFUSED',
  /** A command line the user can correct (an unknown flag, a missing value): printed as is, exit 1. */
  USAGE: 'USAGE',
  /** A jq expression that does not compile (a mapping or template: the start stops). */
  JQ_COMPILE: 'JQ_COMPILE',
  /** A jq expression failed on its input, ran past its time budget, or made more output than its budget. */
  JQ_FAILED: 'JQ_FAILED',
  JQ_TIMEOUT: 'JQ_TIMEOUT',
  JQ_OUTPUT_TOO_LARGE: 'JQ_OUTPUT_TOO_LARGE',
  /** A secret input (`encryption: aes256-gcm`) cannot be encrypted: the org has no secret of 32 bytes or more. */
  SECRET_KEY_MISSING: 'SECRET_KEY_MISSING',
  /** (agent) A field named in `fieldsToDecryptPaths` does not decrypt under the org's secret. */
  SECRET_UNREADABLE: 'SECRET_UNREADABLE',
  /** (agent) A payload mapping's expression failed or ran past its budget; the summary names the mapping and field. */
  MAPPING_FAILED: 'MAPPING_FAILED',
  /** (agent) No mapping of the payload file is enabled for the run. */
  NO_MAPPING: 'NO_MAPPING',
  /** A `{{ }}` template of the invocation method failed or ran past its budget; the summary names the field. */
  TEMPLATE_FAILED: 'TEMPLATE_FAILED',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export interface RouterErrorOptions {
  retriable?: boolean;
  cause?: unknown;
  /** Extra facts for logs and status summaries (status code, field path...). */
  details?: Record<string, unknown>;
}

export class RouterError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: RouterErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RouterError';
    this.code = code;
    this.retriable = options.retriable ?? false;
    this.details = options.details ?? {};
    // pino serialises own enumerable properties; make the useful ones visible.
    Object.defineProperty(this, 'message', { enumerable: true, value: message });
  }
}

/** An event that cannot be routed: it goes to the DLQ under `code`. */
export class RejectedEventError extends RouterError {
  constructor(code: ErrorCode, message: string, options: RouterErrorOptions = {}) {
    super(code, message, { ...options, retriable: false });
    this.name = 'RejectedEventError';
  }
}

/** A backend call failed; `retriable` says whether another attempt may help. */
export class BackendError extends RouterError {
  constructor(code: ErrorCode, message: string, options: RouterErrorOptions = {}) {
    super(code, message, options);
    this.name = 'BackendError';
  }
}

/** Configuration is invalid; `variable` names the environment variable. */
export class ConfigError extends RouterError {
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(ErrorCodes.CONFIG_INVALID, `${variable}: ${message}`);
    this.name = 'ConfigError';
    this.variable = variable;
  }
}

/** The run store cannot answer now; the API answers 503 in Port's envelope. */
export class StoreUnavailableError extends RouterError {
  constructor(message: string) {
    super(ErrorCodes.STORE_UNAVAILABLE, message, { retriable: true });
    this.name = 'StoreUnavailableError';
  }
}

export function isRouterError(err: unknown): err is RouterError {
  return err instanceof RouterError;
}

/** A readable one-line message from anything that was thrown. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

// Failure messages and stack traces go into an encoded payload, so that the payload codec (when
// configured) encrypts them like every other payload: an error message can quote a hostname,
// a key name or a row. Used by the workflow bundle, the worker and the client alike.
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });

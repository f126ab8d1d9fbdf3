// The data converter every process of the project shares: the failure converter that encodes
// messages and stack traces, and the payload codec when keys are configured. Worker, client and
// workflow bundle must agree, or one of them cannot read what another wrote.
import type { DataConverter } from '@temporalio/common';
import { AesGcmCodec, type CodecKeys } from './codec';

/** Loaded by path: the workflow sandbox gets it from the bundle, the worker and clients require it. */
export const FAILURE_CONVERTER_PATH = require.resolve('../workflows/failure-converter');

export function dataConverter(keys: CodecKeys | undefined): DataConverter {
  return { payloadCodecs: keys ? [new AesGcmCodec(keys)] : [], failureConverterPath: FAILURE_CONVERTER_PATH };
}

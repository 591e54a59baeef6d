/** RFC 9421 HTTP Message Signatures: components, signature base, signing and verification. */
export { parseAcceptSignature, type RequestedSignature } from './accept-signature.ts';
export { algorithmForKey, isSignatureAlgorithm, type SignatureAlgorithm } from './algorithms.ts';
export type { HttpMessage } from './message.ts';
export {
  type ParsedSignature,
  parseSignatures,
  SignatureError,
  type SignatureParameters,
  signatureBase,
  signMessage,
  verifySignature,
} from './signature.ts';

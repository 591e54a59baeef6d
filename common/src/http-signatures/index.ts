/** RFC 9421 HTTP Message Signatures: components, signature base, signing and verification. */
export { algorithmForKey, isSignatureAlgorithm, SIGNATURE_ALGORITHMS, type SignatureAlgorithm } from './algorithms.ts';
export { ComponentError, componentValue } from './components.ts';
export { fieldValues, type HttpMessage } from './message.ts';
export {
  type ComponentSpec,
  type MessageSignature,
  type ParsedSignature,
  parseSignatures,
  SignatureError,
  type SignatureParameters,
  signatureBase,
  signMessage,
  toItem,
  verifySignature,
} from './signature.ts';

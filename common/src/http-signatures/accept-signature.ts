import { type InnerList, type Item, type Parameters, parseDictionary } from 'structured-headers';
import { SignatureError } from './signature.ts';

/** One signature a requester asks for (RFC 9421 §5.1): its label, the components, the parameters. */
export interface RequestedSignature {
  label: string;
  components: Item[];
  params: Parameters;
}

/**
 * Parses an `Accept-Signature` field (RFC 9421 §5.1): an RFC 8941 dictionary whose members are
 * inner lists of component identifiers, each list with the signature parameters the requester
 * wants (`created`, `keyid`, `nonce`, `tag`…). Throws SignatureError when the field is no such
 * dictionary. Which components and parameters a signer can honour is its own policy.
 */
export function parseAcceptSignature(value: string): RequestedSignature[] {
  let dict: ReturnType<typeof parseDictionary>;
  try {
    dict = parseDictionary(value);
  } catch {
    throw new SignatureError('Accept-Signature is not a structured field dictionary (RFC 8941)');
  }
  const out: RequestedSignature[] = [];
  for (const [label, member] of dict) {
    if (!Array.isArray(member[0])) throw new SignatureError(`Accept-Signature "${label}" is not an inner list`);
    const [components, params] = member as InnerList;
    for (const c of components) {
      if (typeof c[0] !== 'string')
        throw new SignatureError(`Accept-Signature "${label}" lists a non-string component`);
    }
    out.push({ label, components, params });
  }
  return out;
}

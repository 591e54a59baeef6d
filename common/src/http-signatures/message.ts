/**
 * The view of an HTTP message that RFC 9421 components are taken from. Field names are
 * lower-case; a field that appears several times keeps its values in order.
 */
export interface HttpMessage {
  /** Request only. */
  method?: string;
  /** Request only: the absolute target URI (`https://host/path?query`). */
  targetUri?: string;
  /** Response only. */
  status?: number;
  headers: Record<string, string | string[] | undefined>;
  /** For a response, the request it answers (components with the `req` parameter). */
  request?: HttpMessage;
}

/** Field values in order, or undefined when the field is absent. */
export function fieldValues(message: HttpMessage, name: string): string[] | undefined {
  const value = message.headers[name];
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value : [value];
}

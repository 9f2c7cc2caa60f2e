/**
 * Which media type a response is sent in, from the request's Accept header (GraphQL over HTTP
 * with RFC 9110's negotiation: weights, `q=0`, wildcards, parameters).
 */
import { describe, expect, it } from "vitest";
import { GRAPHQL_RESPONSE, JSON_MEDIA, responseMediaType } from "../../gateway/http.ts";

describe("responseMediaType", () => {
  it("answers legacy clients in application/json: no Accept, wildcards, application/json", () => {
    expect(responseMediaType(undefined)).toBe(JSON_MEDIA);
    expect(responseMediaType("*/*")).toBe(JSON_MEDIA);
    expect(responseMediaType("application/*")).toBe(JSON_MEDIA);
    expect(responseMediaType("APPLICATION/JSON; charset=utf-8")).toBe(JSON_MEDIA);
  });

  it("follows the client's order among types it ranks alike, and its weights", () => {
    expect(responseMediaType(`${GRAPHQL_RESPONSE}, ${JSON_MEDIA}`)).toBe(GRAPHQL_RESPONSE);
    expect(responseMediaType(`${JSON_MEDIA}, ${GRAPHQL_RESPONSE}`)).toBe(JSON_MEDIA);
    expect(responseMediaType(`${JSON_MEDIA};q=0.5, ${GRAPHQL_RESPONSE}`)).toBe(GRAPHQL_RESPONSE);
  });

  it("takes q=0 as 'not this one', and refuses what it cannot send", () => {
    expect(responseMediaType(`${JSON_MEDIA};q=0, */*`)).toBe(GRAPHQL_RESPONSE);
    expect(responseMediaType(`${JSON_MEDIA};q=0`)).toBeNull();
    expect(responseMediaType("text/html")).toBeNull();
    // Answers are UTF-8 only.
    expect(responseMediaType(`${JSON_MEDIA}; charset=latin1`)).toBeNull();
  });

  it("gives the same answer for a header it has seen before", () => {
    const accept = `${JSON_MEDIA};q=0.1, ${GRAPHQL_RESPONSE};q=0.9`;
    expect(responseMediaType(accept)).toBe(GRAPHQL_RESPONSE);
    expect(responseMediaType(accept)).toBe(GRAPHQL_RESPONSE);
  });
});

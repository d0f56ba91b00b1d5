/** fast-jwt checks `iss`/`aud` only where the token has them: a configured one is required too. */
export function claimChecks(shape: { issuer?: string; audience?: string }) {
  return {
    ...(shape.issuer ? { allowedIss: shape.issuer } : {}),
    ...(shape.audience ? { allowedAud: shape.audience } : {}),
    ...(shape.issuer || shape.audience ? { requiredClaims: [...(shape.issuer ? ['iss'] : []), ...(shape.audience ? ['aud'] : [])] } : {}),
  };
}

/**
 * What fast-jwt checks besides the signature: `exp` always (a token that never expires is refused),
 * and `iss`/`aud` where configured (fast-jwt checks them only where the token has them, so a
 * configured one is required too).
 */
export function claimChecks(shape: { issuer?: string; audience?: string }) {
  return {
    ...(shape.issuer ? { allowedIss: shape.issuer } : {}),
    ...(shape.audience ? { allowedAud: shape.audience } : {}),
    requiredClaims: ['exp', ...(shape.issuer ? ['iss'] : []), ...(shape.audience ? ['aud'] : [])],
  };
}

/**
 * A token's life: `exp` − `iat`, or `exp` − now when it has no `iat`. A stolen token that lives a
 * year is a stolen account for a year, so a life over the ceiling is refused whoever signed it.
 */
export function lifeWithin(payload: Record<string, unknown>, maxAgeS: number, nowS = Date.now() / 1000): boolean {
  const { exp, iat } = payload;
  if (typeof exp !== 'number') return false;
  const from = typeof iat === 'number' ? iat : nowS;
  return exp - from <= maxAgeS;
}

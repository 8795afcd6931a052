// Stage 08's client checks: written on the branch h08-client-checks (this placeholder registers the stage meanwhile).
import type { Check } from '../harness/checks.ts';

export const clientChecks: Check[] = [];

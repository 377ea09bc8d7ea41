// Every migration, in order. TypeORM runs the ones the database has not seen yet.
import { Initial1763769600000 } from "./1763769600000-Initial.js";
import { RevocationNotify1763770000000 } from "./1763770000000-RevocationNotify.js";
import { OtpCodesAndRateLimits1763780000000 } from "./1763780000000-OtpCodesAndRateLimits.js";
import { Mfa1763790000000 } from "./1763790000000-Mfa.js";
import { CanonicalEmails1763805000000 } from "./1763805000000-CanonicalEmails.js";
import { RateLimitNextAdmission1763900000000 } from "./1763900000000-RateLimitNextAdmission.js";
import { ServiceAccounts1764000000000 } from "./1764000000000-ServiceAccounts.js";
import { Administration1764100000000 } from "./1764100000000-Administration.js";
import { MfaCodeFactors1764300000000 } from "./1764300000000-MfaCodeFactors.js";
import { ProfileAndReauthentication1764310000000 } from "./1764310000000-ProfileAndReauthentication.js";
import { FederatedIdentities1764400000000 } from "./1764400000000-FederatedIdentities.js";
import { Passkeys1764410000000 } from "./1764410000000-Passkeys.js";
import { HmacKeys1764420000000 } from "./1764420000000-HmacKeys.js";

export const migrations = [Initial1763769600000, RevocationNotify1763770000000, OtpCodesAndRateLimits1763780000000, Mfa1763790000000, CanonicalEmails1763805000000, RateLimitNextAdmission1763900000000, ServiceAccounts1764000000000, Administration1764100000000, MfaCodeFactors1764300000000, ProfileAndReauthentication1764310000000, FederatedIdentities1764400000000, Passkeys1764410000000, HmacKeys1764420000000];

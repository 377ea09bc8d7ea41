// Roles as configuration (ROLES, lowest first) and who may do what to whom. Pure: no store.
//
// An actor's power is the rank of its role; a service account (AdminService on the gRPC port) and
// the admin command line act with the highest role's powers. An account whose stored role is not
// in ROLES (ROLES shrank since it was set) ranks as the lowest role: any administrator may act on
// it, and it never administers (ADMIN_ROLES only names roles of ROLES).

/** Who performs an administrative act. */
export type Actor =
  | { readonly kind: "user"; readonly userId: string; readonly role: string; readonly sessionId: string }
  | { readonly kind: "service"; readonly name: string }
  | { readonly kind: "cli" };

/** The actor as audit events name it: `user:<id>`, `service:<name>` or `cli`. */
export function actorName(actor: Actor): string {
  switch (actor.kind) {
    case "user":
      return `user:${actor.userId}`;
    case "service":
      return `service:${actor.name}`;
    case "cli":
      return "cli";
  }
}

export interface Roles {
  /** Every role, lowest first. */
  readonly all: readonly string[];
  /** The last of ROLES: the one that must keep an active holder. */
  readonly highest: string;
  readonly defaultRole: string;
  /** Whether `role` is one of ROLES. */
  has(role: string): boolean;
  /** 0 for the lowest role (and for a role not in ROLES), up to all.length - 1. */
  rank(role: string): number;
  /** The rank an actor acts with. */
  power(actor: Actor): number;
  /** The roles an actor of `power` may set and act on (the stored roles not in ROLES are added by the store). */
  upTo(power: number): string[];
  /** Whether a holder of `role` may call AdminService (ADMIN_ROLES). */
  administers(role: string): boolean;
}

export function createRoles(settings: { readonly roles: readonly string[]; readonly defaultRole: string; readonly adminRoles: readonly string[] }): Roles {
  const all = [...settings.roles];
  if (all.length === 0) throw new Error("ROLES must name at least one role");
  const ranks = new Map(all.map((role, i) => [role, i]));
  const admins = new Set(settings.adminRoles);
  const rank = (role: string) => ranks.get(role) ?? 0;
  return {
    all,
    highest: all[all.length - 1]!,
    defaultRole: settings.defaultRole,
    has: (role) => ranks.has(role),
    rank,
    power: (actor) => (actor.kind === "user" ? rank(actor.role) : all.length - 1),
    upTo: (power) => all.slice(0, power + 1),
    administers: (role) => admins.has(role),
  };
}

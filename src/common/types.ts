/**
 * Branded address types. They cost nothing at run time; they stop a guest-physical
 * address from being passed where a host-physical one is expected.
 */
export type Gva = number & { readonly __brand: 'Gva' };
export type Gpa = number & { readonly __brand: 'Gpa' };
export type Hpa = number & { readonly __brand: 'Hpa' };
export type Iova = number & { readonly __brand: 'Iova' };

export const asHpa = (n: number): Hpa => n as Hpa;
export const asGpa = (n: number): Gpa => n as Gpa;

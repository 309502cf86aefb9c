/** The ajv options the roster schema is compiled with, at build time (standalone) and at run time alike. */
export const AJV_OPTIONS = { allErrors: true, verbose: true, allowUnionTypes: true, strict: true } as const;

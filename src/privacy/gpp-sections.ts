// GPP section IDs this service acts on (IAB GPP spec, "Section Information"). Kept here as data so the
// config parser can name the valid sections without loading the GPP library; a unit test checks the table
// against @iabgpp/cmpapi's own Sections.SECTION_ID_NAME_MAP.

/** TCF EU v2 inside a GPP string: its section text is a TC string. */
export const GPP_TCFEUV2_ID = 2;
/** The deprecated US Privacy string carried as a GPP section. */
export const GPP_USPV1_ID = 6;

/** The US sections (uspv1, usnat and the states) by ID, the ones GPP_STATES can set to enforce or ignore. */
export const GPP_US_SECTIONS: ReadonlyMap<number, string> = new Map([
  [6, "uspv1"],
  [7, "usnat"],
  [8, "usca"],
  [9, "usva"],
  [10, "usco"],
  [11, "usut"],
  [12, "usct"],
  [13, "usfl"],
  [14, "usmt"],
  [15, "usor"],
  [16, "ustx"],
  [17, "usde"],
  [18, "usia"],
  [19, "usne"],
  [20, "usnh"],
  [21, "usnj"],
  [22, "ustn"],
  [23, "usmn"],
  [24, "usmd"],
  [25, "usin"],
  [26, "usky"],
  [27, "usri"],
]);

/** Section names indexed by ID (a dense array: the hot path looks names up per listed section). */
export const GPP_US_SECTION_NAME_BY_ID: readonly (string | undefined)[] = (() => {
  const out: (string | undefined)[] = [];
  for (const [id, name] of GPP_US_SECTIONS) out[id] = name;
  return out;
})();

export const GPP_US_SECTION_NAMES: readonly string[] = [...GPP_US_SECTIONS.values()];

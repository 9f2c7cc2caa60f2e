/**
 * The demo population: households of a synthetic but realistic population, and what each
 * department would export about them. Deterministic: the same persons count, seed and reference
 * date give the same records in the same order. Every household draws from its own random stream
 * (seeded by the household's number), so a larger population starts with the same households as
 * a smaller one and the demo subjects found early stay the same.
 *
 * Volume is kept where the policies need it: contribution and income-tax histories belong to
 * migrants living in Beijing (who need 60 months of both) and to a share of Beijing workers.
 */
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { DEPARTMENTS, type Department } from "../common/departments.ts";
import { makePersonId, usccCheckCharacter } from "../common/ids.ts";
import { parseRecord } from "../common/records.ts";
import { countyCodes, region } from "../common/regions.ts";
import { databasePath, openDepartmentDatabase } from "../common/sqlite.ts";
import { formatMoney } from "../common/values.ts";
import { departmentModules } from "../subgraphs/registry.ts";

// ---------------------------------------------------------------------------------------------
// Randomness: sfc32, a small fast generator with a 128-bit state, never Math.random.

/** A seeded pseudo-random stream (sfc32), its state initialised through splitmix32. */
export class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number, stream = 0) {
    let state = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(stream >>> 0, 0x85ebca77)) | 0;
    const splitmix = () => {
      state = (state + 0x9e3779b9) | 0;
      let z = state;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) | 0;
    };
    this.a = splitmix();
    this.b = splitmix();
    this.c = splitmix();
    this.d = splitmix();
    for (let i = 0; i < 12; i++) this.uint32();
  }

  uint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.uint32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** Uniform integer in [low, high]. */
  between(low: number, high: number): number {
    return low + this.int(high - low + 1);
  }

  chance(probability: number): boolean {
    return this.float() < probability;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }
}

/** Values with relative weights, drawn in O(log n). */
class Weighted<T> {
  private readonly values: T[];
  private readonly cumulative: number[];
  private readonly total: number;

  constructor(entries: ReadonlyArray<readonly [T, number]>) {
    this.values = entries.map(([value]) => value);
    let sum = 0;
    this.cumulative = entries.map(([, weight]) => {
      sum += weight;
      return sum;
    });
    this.total = sum;
  }

  pick(random: Random): T {
    const target = random.float() * this.total;
    let low = 0;
    let high = this.cumulative.length - 1;
    while (low < high) {
      const mid = (low + high) >> 1;
      if ((this.cumulative[mid] as number) > target) high = mid;
      else low = mid + 1;
    }
    return this.values[low] as T;
  }
}

// ---------------------------------------------------------------------------------------------
// Days and months as integers (days since 1970-01-01, months as year*12 + month-1), with their
// strings cached: the generator formats millions of dates from a few tens of thousands of days.

const MS_PER_DAY = 86_400_000;
const FIRST_BIRTH_DAY = Date.UTC(1940, 0, 1) / MS_PER_DAY;

function dayOf(year: number, month: number, day: number): number {
  return Date.UTC(year, month - 1, day) / MS_PER_DAY;
}

function dayOfDate(date: string): number {
  return dayOf(Number(date.slice(0, 4)), Number(date.slice(5, 7)), Number(date.slice(8, 10)));
}

const FIRST_CACHED_DAY = dayOf(1900, 1, 1);
const dateStrings: string[] = [];

function dateOf(day: number): string {
  const slot = day - FIRST_CACHED_DAY;
  let text = dateStrings[slot];
  if (text === undefined) {
    text = new Date(day * MS_PER_DAY).toISOString().slice(0, 10);
    if (slot >= 0 && slot < 80_000) dateStrings[slot] = text;
  }
  return text;
}

/** The same calendar day `years` later (29 February becomes 1 March). */
function addYears(day: number, years: number): number {
  const date = new Date(day * MS_PER_DAY);
  return (
    Date.UTC(date.getUTCFullYear() + years, date.getUTCMonth(), date.getUTCDate()) / MS_PER_DAY
  );
}

const monthStrings: string[] = [];

function monthOf(month: number): string {
  let text = monthStrings[month - 1900 * 12];
  if (text === undefined) {
    text = `${Math.floor(month / 12)}-${String((month % 12) + 1).padStart(2, "0")}`;
    monthStrings[month - 1900 * 12] = text;
  }
  return text;
}

function monthOfDay(day: number): number {
  const date = new Date(day * MS_PER_DAY);
  return date.getUTCFullYear() * 12 + date.getUTCMonth();
}

/** Day `dayOfMonth` (1..28) of a month index. */
function dayInMonth(month: number, dayOfMonth: number): number {
  return dayOf(Math.floor(month / 12), (month % 12) + 1, dayOfMonth);
}

function yearOfMonth(month: number): number {
  return Math.floor(month / 12);
}

// ---------------------------------------------------------------------------------------------
// Places, names and words.

const BEIJING_DISTRICTS = new Weighted<string>([
  ["110105", 34], // 朝阳
  ["110108", 31], // 海淀
  ["110106", 20], // 丰台
  ["110114", 22], // 昌平
  ["110115", 20], // 大兴
  ["110112", 18], // 通州
  ["110102", 11], // 西城
  ["110101", 7], // 东城
  ["110113", 13], // 顺义
  ["110111", 13], // 房山
  ["110107", 6], // 石景山
  ["110109", 4], // 门头沟
  ["110116", 4], // 怀柔
  ["110117", 5], // 平谷
  ["110118", 5], // 密云
  ["110119", 3], // 延庆
]);

/** Provinces that people in Beijing most often come from, by two-digit prefix. */
const OTHER_PROVINCES = new Weighted<string>([
  ["13", 24], // 河北
  ["37", 10], // 山东
  ["41", 11], // 河南
  ["12", 7], // 天津
  ["31", 4], // 上海
  ["14", 6], // 山西
  ["15", 4], // 内蒙古
  ["21", 5], // 辽宁
  ["23", 6], // 黑龙江
  ["22", 3], // 吉林
  ["34", 5], // 安徽
  ["42", 4], // 湖北
  ["43", 3], // 湖南
  ["32", 3], // 江苏
  ["51", 3], // 四川
  ["61", 2], // 陕西
]);

const PLATE_PREFIX: Record<string, string> = {
  "11": "京",
  "12": "津",
  "13": "冀",
  "14": "晋",
  "15": "蒙",
  "21": "辽",
  "22": "吉",
  "23": "黑",
  "31": "沪",
  "32": "苏",
  "34": "皖",
  "37": "鲁",
  "41": "豫",
  "42": "鄂",
  "43": "湘",
  "51": "川",
  "61": "陕",
};
const SURNAME_WEIGHTS = [
  71, 70, 68, 54, 45, 31, 22, 20, 19, 19, 13, 13, 11, 11, 10, 10, 9, 9, 9, 8, 8, 7, 6, 6, 6, 5, 5,
  5, 5, 5,
];
const BEIJING_PLATE_LETTERS = [..."ABCEFGHJKLMNPQ"];
const PLATE_LETTERS = "ABCDEFGHJKLMNPQRS";
const PLATE_CHARACTERS = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";

/** Surnames by frequency: the 30 commonest with their weights (per mille), then rarer ones. */
const SURNAMES = new Weighted<string>(
  [
    ..."王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严武戴孔汤",
  ].map((surname, rank) => [surname, SURNAME_WEIGHTS[rank] ?? 3] as const),
);

const MALE_NAME_CHARACTERS = [
  ..."伟强磊军勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林阳建国峰志文博东海晨昊轩然泽睿思天成德福永春亮兵",
];
const FEMALE_NAME_CHARACTERS = [
  ..."芳娜敏静丽艳娟霞秀玲桂英燕萍红婷雪琳晶慧颖倩洁佳欣怡梦雨诗涵悦琪萱妍蕾璐薇月晓淑玉兰凤梅琴云珍",
];

const ETHNICITIES = new Weighted<string>([
  ["汉族", 915],
  ["回族", 18],
  ["满族", 18],
  ["蒙古族", 10],
  ["壮族", 8],
  ["朝鲜族", 5],
  ["土家族", 5],
  ["苗族", 4],
  ["维吾尔族", 3],
  ["藏族", 3],
]);

const STREETS =
  "建国路 朝阳北路 中关村大街 学院路 复兴路 人民路 解放路 中山路 建设路 和平路 新华路 光明街 胜利路 幸福街 文化路 团结路 友谊路 花园路 东风路 育才路 青年路 滨河路 工农路 振兴路 春晓路 湖滨路 长青路 丽泽路 望京街 广安门外大街".split(
    " ",
  );
const TRADE_NAME_CHARACTERS = [
  ..."华盛恒鑫泰达兴隆瑞祥宏远安康嘉诚信德福源通利佳美新创智博天宇辰星辉金海龙中正丰和润",
];
const INDUSTRIES =
  "科技 商贸 餐饮管理 建筑工程 文化传媒 信息技术 物流 电子 医疗器械 教育咨询 汽车服务 食品 服装 环保科技 广告 装饰工程".split(
    " ",
  );
const SHOP_KINDS = "餐馆 小吃店 便利店 五金店 理发店 水果店 汽车修理部 干洗店 花店".split(" ");
const LICENSE_CLASSES = new Weighted<string>([
  ["C1", 82],
  ["C2", 9],
  ["B2", 4],
  ["A2", 2],
  ["A1", 1],
  ["D", 2],
]);

function shortProvinceName(code: string): string {
  return (region(`${code.slice(0, 2)}0000`)?.name ?? "").replace(
    /(省|市|自治区|壮族自治区|回族自治区|维吾尔自治区)$/,
    "",
  );
}

// ---------------------------------------------------------------------------------------------
// Unique natural keys without remembering every id: a citizen number is unique when its region,
// birth date and sequence are; the claimed triples live in one open-addressing table of doubles.

class PersonIdRegistry {
  private slots: Float64Array;
  private used = 0;
  private readonly regionNumbers = new Map<string, number>();

  constructor(expectedPersons: number) {
    let size = 4096;
    while (size < expectedPersons * 2) size *= 2;
    this.slots = new Float64Array(size);
  }

  /**
   * A free sequence number for region and birth day, starting at `preferred` and keeping its
   * parity (which encodes gender); -1 when all 500 are taken.
   */
  claim(regionCode: string, birthDay: number, preferred: number): number {
    let regionNumber = this.regionNumbers.get(regionCode);
    if (regionNumber === undefined) {
      regionNumber = this.regionNumbers.size;
      this.regionNumbers.set(regionCode, regionNumber);
    }
    const base = (regionNumber * 65536 + (birthDay - FIRST_CACHED_DAY)) * 1000;
    for (let attempt = 0; attempt < 500; attempt++) {
      const sequence = (preferred + attempt * 2) % 1000;
      if (this.insert(base + sequence + 1)) return sequence;
    }
    return -1;
  }

  private insert(key: number): boolean {
    if (this.used * 2 >= this.slots.length) this.grow();
    const mask = this.slots.length - 1;
    let slot = (Math.imul(key >>> 0, 0x9e3779b1) ^ Math.imul(key / 4294967296, 0x85ebca77)) & mask;
    for (;;) {
      const held = this.slots[slot] as number;
      if (held === 0) {
        this.slots[slot] = key;
        this.used++;
        return true;
      }
      if (held === key) return false;
      slot = (slot + 1) & mask;
    }
  }

  private grow(): void {
    const old = this.slots;
    this.slots = new Float64Array(old.length * 2);
    this.used = 0;
    for (const key of old) if (key !== 0) this.insert(key);
  }
}

/** A bijection on [0, size) (size a multiple of none of the multiplier's factors), for codes. */
function scramble(counter: number, size: number): number {
  return (counter * 7_919 + 104_729) % size;
}

function encode(value: number, alphabet: string, length: number): string {
  let text = "";
  let rest = value;
  for (let i = 0; i < length; i++) {
    text = alphabet[rest % alphabet.length] + text;
    rest = Math.floor(rest / alphabet.length);
  }
  return text;
}

const USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY";
const ORGANIZATION_CODE_VALUES = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const ORGANIZATION_CODE_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2] as const;

/** Check character of an organisation code (GB 11714), the 9th character of its USCC part. */
function organizationCodeCheck(first8: string): string {
  let sum = 0;
  for (let i = 0; i < 8; i++) {
    sum +=
      ORGANIZATION_CODE_VALUES.indexOf(first8[i] as string) * (ORGANIZATION_CODE_WEIGHTS[i] ?? 0);
  }
  const check = 11 - (sum % 11);
  return check === 10 ? "X" : check === 11 ? "0" : String(check);
}

// ---------------------------------------------------------------------------------------------
// The population.

export type ExportLine = { kind: string } & Record<string, string | null>;

/** Receives each generated record with the department that exports it. */
export type RecordSink = (department: Department, line: ExportLine) => void;

export interface PopulationOptions {
  /** How many persons (exactly). */
  persons: number;
  /** Seed of the population (a 32-bit unsigned integer). */
  seed: number;
  /** The day the population is "as of" (`YYYY-MM-DD`): histories run up to it. */
  asOf: string;
}

/** Kinds of demo subject, with what a service desk sees when it asks about them. */
export const DEMO_SUBJECT_KINDS = {
  eligibleBeijingAdult:
    "Beijing hukou adult with a valid licence and no car in Beijing: individual lottery ELIGIBLE",
  beijingCarOwner: "Beijing hukou adult who owns a passenger car in Beijing: OWNS_CAR_IN_BEIJING",
  withoutValidLicense:
    "Beijing hukou adult whose licence is expired, suspended or revoked: NO_VALID_DRIVER_LICENSE",
  migrantFullHistory:
    "migrant with a valid residence permit, 60+ months of Beijing social insurance and income tax every year: ELIGIBLE",
  migrantBackPaid:
    "migrant whose 60 months are complete only thanks to back-paid months (paid late, recently)",
  migrantWithGap: "migrant with a gap in the last 60 months of social insurance",
  migrantShortHistory: "migrant with fewer than 60 months of social insurance in Beijing",
  migrantWithoutIncomeTax: "migrant with full social insurance but a year without income tax",
  migrantExpiredPermit: "migrant with a full history whose residence permit has expired",
  workResidencePermitHolder: "non-Beijing hukou holder of a valid Beijing work residence permit",
  minor: "person under 18: UNDERAGE",
  deceased: "deceased person: DECEASED",
  marriedWithChildren: "married person with children (parentage records)",
  divorced: "divorced person",
  widowed: "widowed person (the spouse is deceased)",
  legalRepresentative: "legal representative of an organisation eligible for the lottery",
  eligibleOrganization:
    "active organisation registered in Beijing with at least 50000.00 yuan VAT last year",
  organizationWithLargeQuota: "eligible organisation with a quota above 1",
  organizationVatInsufficient: "active Beijing organisation with less than 50000.00 yuan VAT",
  organizationNotActive: "revoked or deregistered organisation",
  organizationOutsideBeijing: "active organisation registered outside Beijing",
} as const;

export type DemoSubjectKind = keyof typeof DEMO_SUBJECT_KINDS;
export type DemoSubjects = Record<DemoSubjectKind, string[]>;

/** How many examples of each kind of demo subject are kept. */
const DEMO_EXAMPLES = 3;

type Gender = "M" | "F";

interface Member {
  gender: Gender;
  birthDay: number;
  diedDay: number | null;
  hukouRegion: string;
  id: string;
  name: string;
}

interface Marriage {
  a: number;
  b: number;
  registeredDay: number;
  dissolvedDay: number | null;
  dissolution: "DIVORCE" | "DEATH" | null;
}

type HistoryKind = "full" | "backPaid" | "gap" | "short" | "lowIncome" | "local" | "home";

/** One household's draw: its members, their marriages and parentage, where they live. */
interface Household {
  members: Member[];
  marriages: Marriage[];
  /** [parent, child] member indexes. */
  parentage: Array<[number, number]>;
  hukouRegion: string;
  /** Beijing district the household lives in, or null when it lives outside Beijing. */
  beijingDistrict: string | null;
  address: string;
  ethnicity: string;
}

/** Generates the population, handing every record to `sink`; returns the demo subjects found. */
export function generatePopulation(options: PopulationOptions, sink: RecordSink): DemoSubjects {
  return new PopulationGenerator(options, sink).run();
}

class PopulationGenerator {
  private readonly asOfDay: number;
  private readonly asOfMonth: number;
  /** Last month whose contribution is paid by the reference day (paid on the 15th). */
  private readonly lastPaidMonth: number;
  private readonly latestBirthDay: number;
  private readonly ids: PersonIdRegistry;
  private readonly counties = new Map<string, string[]>();
  private readonly employers: string[] = [];
  private employerCursor = 0;
  private readonly plateCounters = new Map<string, number>();
  private organizationCounter = 0;
  private permitCounter = 0;
  private readonly subjects = Object.fromEntries(
    Object.keys(DEMO_SUBJECT_KINDS).map((kind) => [kind, [] as string[]]),
  ) as DemoSubjects;

  constructor(
    private readonly options: PopulationOptions,
    private readonly sink: RecordSink,
  ) {
    this.asOfDay = dayOfDate(options.asOf);
    this.asOfMonth = monthOfDay(this.asOfDay);
    const asOfDayOfMonth = Number(options.asOf.slice(8, 10));
    this.lastPaidMonth = asOfDayOfMonth >= 15 ? this.asOfMonth : this.asOfMonth - 1;
    this.latestBirthDay = Math.min(dayOf(2015, 12, 31), this.asOfDay - 1);
    this.ids = new PersonIdRegistry(options.persons);
  }

  /**
   * Draws the households in order. With `untilSubjectsFound` it stops once every kind of demo
   * subject has its examples: they are the first ones in household order, as in a full run.
   */
  run(untilSubjectsFound = false): DemoSubjects {
    let persons = 0;
    for (let household = 0; persons < this.options.persons; household++) {
      const random = new Random(this.options.seed, household);
      persons += this.household(random, this.options.persons - persons);
      if (untilSubjectsFound && household % 64 === 0 && this.allSubjectsFound()) break;
    }
    return this.subjects;
  }

  private allSubjectsFound(): boolean {
    return Object.values(this.subjects).every((ids) => ids.length === DEMO_EXAMPLES);
  }

  private note(kind: DemoSubjectKind, id: string): void {
    const list = this.subjects[kind];
    if (list.length < DEMO_EXAMPLES) list.push(id);
  }

  private countiesOf(province: string): string[] {
    let list = this.counties.get(province);
    if (!list) {
      list = countyCodes(province);
      this.counties.set(province, list);
    }
    return list;
  }

  private otherCounty(random: Random): string {
    return random.pick(this.countiesOf(OTHER_PROVINCES.pick(random)));
  }

  private age(member: Member, onDay = this.asOfDay): number {
    return ageOnDays(member.birthDay, onDay);
  }

  private name(random: Random, surname: string, gender: Gender): string {
    const characters = gender === "M" ? MALE_NAME_CHARACTERS : FEMALE_NAME_CHARACTERS;
    const given = random.pick(characters) + (random.chance(0.65) ? random.pick(characters) : "");
    return surname + given;
  }

  private address(random: Random, regionCode: string): string {
    const place = region(regionCode)?.name ?? "";
    if (!regionCode.startsWith("11") && random.chance(0.3)) {
      const town = random.pick(TRADE_NAME_CHARACTERS) + random.pick(TRADE_NAME_CHARACTERS);
      const village = random.pick(TRADE_NAME_CHARACTERS) + random.pick(STREET_SUFFIXES);
      return `${place}${town}镇${village}村${random.between(1, 300)}号`;
    }
    const building = random.between(1, 30);
    const unit = random.between(1, 6);
    const room = random.between(1, 24) * 100 + random.between(1, 4);
    return `${place}${random.pick(STREETS)}${random.between(1, 200)}号院${building}号楼${unit}单元${room}`;
  }

  /** Draws one household (at most `budget` members) and emits everything about it. */
  private household(random: Random, budget: number): number {
    const beijing = random.chance(0.6);
    const hukouRegion = beijing ? BEIJING_DISTRICTS.pick(random) : this.otherCounty(random);
    const livesInBeijing = beijing || random.chance(0.22);
    const beijingDistrict = !livesInBeijing
      ? null
      : beijing && random.chance(0.8)
        ? hukouRegion
        : BEIJING_DISTRICTS.pick(random);
    const household: Household = {
      members: [],
      marriages: [],
      parentage: [],
      hukouRegion,
      beijingDistrict,
      address: this.address(random, hukouRegion),
      ethnicity: ETHNICITIES.pick(random),
    };
    this.drawMembers(random, household);
    // The last household may be cut short so that the population has exactly the asked size.
    const kept = Math.min(budget, household.members.length);
    household.members.length = kept;
    household.marriages = household.marriages.filter((m) => m.a < kept && m.b < kept);
    household.parentage = household.parentage.filter(([p, c]) => p < kept && c < kept);
    this.assignIds(random, household);
    this.emitRegister(random, household);
    for (const member of household.members) this.emitLife(random, household, member);
    return kept;
  }

  private drawMembers(random: Random, household: Household): void {
    const { members, marriages, parentage } = household;
    const surname = SURNAMES.pick(random);
    const headGender: Gender = random.chance(0.55) ? "M" : "F";
    const decade = HEAD_BIRTH_DECADES.pick(random);
    const headBirthDay = dayOf(decade, 1, 1) + random.int(decade === 1990 ? 8 * 365 : 3652);
    const head = this.member(random, headGender, headBirthDay, household.hukouRegion, surname);
    members.push(head);

    const registeredDay = addYears(headBirthDay, random.between(22, 32)) + random.int(365);
    const single = random.chance(decade >= 1990 ? 0.4 : 0.14);
    if (!single && registeredDay < this.asOfDay - 30) {
      const spouseGender: Gender = headGender === "M" ? "F" : "M";
      // Husbands are usually a little older than their wives.
      const olderBy = random.int(5 * 365);
      const spouseBirthDay = Math.min(
        headGender === "M" ? headBirthDay + olderBy : headBirthDay - olderBy,
        registeredDay - 20 * 365,
      );
      const spouseRegion = random.chance(0.85) ? household.hukouRegion : this.otherCounty(random);
      const spouse = this.member(random, spouseGender, spouseBirthDay, spouseRegion, null);
      members.push(spouse);
      const marriage: Marriage = {
        a: 0,
        b: 1,
        registeredDay,
        dissolvedDay: null,
        dissolution: null,
      };
      marriages.push(marriage);

      const mother = headGender === "F" ? head : spouse;
      const fatherSurname = headGender === "M" ? surname : surnameOf(spouse.name);
      const children = CHILDREN.pick(random);
      let birthDay = registeredDay + random.between(300, 3 * 365);
      for (let i = 0; i < children; i++) {
        if (birthDay > this.latestBirthDay || ageOnDays(mother.birthDay, birthDay) > 44) break;
        const child = this.member(
          random,
          random.chance(0.51) ? "M" : "F",
          birthDay,
          household.hukouRegion,
          fatherSurname,
        );
        const index = members.push(child) - 1;
        parentage.push([0, index], [1, index]);
        birthDay += random.between(400, 6 * 365);
      }

      const older = head.birthDay <= spouse.birthDay ? head : spouse;
      const earliestDeath = Math.max(addYears(older.birthDay, 58), registeredDay + 365);
      if (decade < 1965 && random.chance(0.15) && earliestDeath < this.asOfDay - 1) {
        older.diedDay = earliestDeath + random.int(this.asOfDay - 1 - earliestDeath);
        marriage.dissolvedDay = older.diedDay;
        marriage.dissolution = "DEATH";
      } else if (random.chance(0.1)) {
        const earliest = registeredDay + 365;
        if (earliest < this.asOfDay - 2) {
          marriage.dissolvedDay = earliest + random.int(this.asOfDay - 2 - earliest);
          marriage.dissolution = "DIVORCE";
          const remarriedOn = marriage.dissolvedDay + random.between(200, 5 * 365);
          if (random.chance(0.4) && remarriedOn < this.asOfDay) {
            const newSpouse = this.member(
              random,
              spouseGender,
              Math.min(spouseBirthDay + random.between(-3 * 365, 6 * 365), remarriedOn - 20 * 365),
              random.chance(0.8) ? household.hukouRegion : this.otherCounty(random),
              null,
            );
            const index = members.push(newSpouse) - 1;
            marriages.push({
              a: 0,
              b: index,
              registeredDay: remarriedOn,
              dissolvedDay: null,
              dissolution: null,
            });
          }
        }
      }
    }

    // A parent of the head, when one could be born after 1940.
    const elderBirthDay = addYears(headBirthDay, -random.between(22, 34)) + random.int(365);
    if (random.chance(0.25) && elderBirthDay >= FIRST_BIRTH_DAY) {
      const elderGender: Gender = random.chance(0.5) ? "M" : "F";
      const elder = this.member(
        random,
        elderGender,
        elderBirthDay,
        household.hukouRegion,
        // The head carries their father's surname.
        elderGender === "M" ? surname : null,
      );
      const earliestDeath = addYears(elderBirthDay, 62);
      if (random.chance(0.25) && earliestDeath < this.asOfDay - 1) {
        elder.diedDay = earliestDeath + random.int(this.asOfDay - 1 - earliestDeath);
      }
      const index = members.push(elder) - 1;
      parentage.push([index, 0]);
    }
  }

  private member(
    random: Random,
    gender: Gender,
    birthDay: number,
    hukouRegion: string,
    surname: string | null,
  ): Member {
    // The population is born 1940–2015; someone drawn earlier is moved into 1940, not onto its
    // first day (which would crowd one birth date).
    const day =
      birthDay < FIRST_BIRTH_DAY
        ? FIRST_BIRTH_DAY + random.int(365)
        : Math.min(birthDay, this.latestBirthDay);
    return {
      gender,
      birthDay: day,
      diedDay: null,
      hukouRegion,
      id: "",
      name: this.name(random, surname ?? SURNAMES.pick(random), gender),
    };
  }

  private assignIds(random: Random, household: Household): void {
    for (const member of household.members) {
      // Most people keep the division code they were registered under at birth; some moved.
      let idRegion = random.chance(0.85) ? member.hukouRegion : this.otherCounty(random);
      let birthDay = member.birthDay;
      const preferred = random.int(500) * 2 + (member.gender === "M" ? 1 : 0);
      let sequence = this.ids.claim(idRegion, birthDay, preferred);
      while (sequence < 0) {
        // 500 people of one gender born the same day in one county: move to a neighbour day.
        birthDay += birthDay > FIRST_BIRTH_DAY + 365 ? -1 : 1;
        idRegion = member.hukouRegion;
        sequence = this.ids.claim(idRegion, birthDay, preferred);
      }
      member.birthDay = birthDay;
      member.id = makePersonId(idRegion, dateOf(birthDay), sequence);
    }
  }

  /** Household register (hukou) and civil-affairs records of a household. */
  private emitRegister(random: Random, household: Household): void {
    const { members } = household;
    for (const member of members) {
      const deceased = member.diedDay !== null;
      this.sink("hukou", {
        kind: "person",
        id: member.id,
        name: member.name,
        gender: member.gender,
        birthDate: dateOf(member.birthDay),
        ethnicity: random.chance(0.97) ? household.ethnicity : ETHNICITIES.pick(random),
        hukouRegion: member.hukouRegion,
        hukouAddress:
          member.hukouRegion === household.hukouRegion
            ? household.address
            : this.address(random, member.hukouRegion),
        status: deceased ? "DECEASED" : "ALIVE",
        diedOn: deceased ? dateOf(member.diedDay as number) : null,
      });
      if (deceased) this.note("deceased", member.id);
      else if (this.age(member) < 18) this.note("minor", member.id);
    }
    for (const [parent, child] of household.parentage) {
      this.sink("hukou", {
        kind: "parentage",
        parentId: (members[parent] as Member).id,
        childId: (members[child] as Member).id,
      });
    }
    for (const marriage of household.marriages) {
      const a = members[marriage.a] as Member;
      const b = members[marriage.b] as Member;
      // Civil-affairs exports name the husband first.
      const [husband, wife] = a.gender === "M" ? [a, b] : [b, a];
      this.sink("civil", {
        kind: "marriage",
        partyA: husband.id,
        partyB: wife.id,
        registeredOn: dateOf(marriage.registeredDay),
        dissolvedOn: marriage.dissolvedDay === null ? null : dateOf(marriage.dissolvedDay),
        dissolution: marriage.dissolution,
      });
    }
    for (const [index, member] of members.entries()) {
      if (member.diedDay !== null) continue;
      const own = household.marriages.filter((m) => m.a === index || m.b === index);
      const latest = own.reduce<Marriage | null>(
        (last, m) => (last === null || m.registeredDay > last.registeredDay ? m : last),
        null,
      );
      if (latest === null) continue;
      const hasChildren = household.parentage.some(([parent]) => parent === index);
      if (latest.dissolution === null && hasChildren) this.note("marriedWithChildren", member.id);
      if (own.every((m) => m.dissolution !== null)) {
        this.note(latest.dissolution === "DEATH" ? "widowed" : "divorced", member.id);
      }
    }
  }

  /** Licences, vehicles, organisations, permits, contributions and taxes of one person. */
  private emitLife(random: Random, household: Household, member: Member): void {
    if (member.diedDay !== null) return;
    const age = this.age(member);
    if (age < 18) return;
    const beijingHukou = member.hukouRegion.startsWith("11");
    const livesInBeijing = household.beijingDistrict !== null;
    const migrant = livesInBeijing && !beijingHukou;

    const license = this.emitDriverLicense(random, member, age);
    const licenseValid = license === "valid";
    const ownsCarInBeijing = this.emitVehicles(random, household, member, age, licenseValid);
    if (age >= 25 && age <= 65 && random.chance(0.04)) {
      this.emitOrganization(random, household, member);
    }

    if (migrant && age <= 60) {
      const eligibleOtherwise = licenseValid && !ownsCarInBeijing;
      this.emitMigrantLife(random, household, member, eligibleOtherwise);
    } else if (beijingHukou) {
      if (licenseValid && !ownsCarInBeijing) this.note("eligibleBeijingAdult", member.id);
      if (licenseValid && ownsCarInBeijing) this.note("beijingCarOwner", member.id);
      if (license === "invalid" && !ownsCarInBeijing) this.note("withoutValidLicense", member.id);
      if (age <= 60 && random.chance(0.1)) {
        const district = random.chance(0.6)
          ? (household.beijingDistrict ?? member.hukouRegion)
          : BEIJING_DISTRICTS.pick(random);
        const months = random.between(12, 30);
        this.emitEmployment(random, member, "local", this.lastPaidMonth - months + 1, district);
      }
    } else if (age <= 60 && random.chance(0.03)) {
      this.emitEmployment(
        random,
        member,
        "home",
        this.lastPaidMonth - random.between(6, 24) + 1,
        member.hukouRegion,
      );
    }
  }

  /** Emits a licence (or none) and tells whether it is VALID on the reference day. */
  private emitDriverLicense(
    random: Random,
    member: Member,
    age: number,
  ): "valid" | "invalid" | "none" {
    if (!random.chance(age > 70 ? 0.25 : 0.65)) return "none";
    const eighteen = addYears(member.birthDay, 18);
    const latest = Math.min(addYears(eighteen, 25), this.asOfDay - 30);
    if (latest <= eighteen) return "none";
    const issuedDay = eighteen + random.int(latest - eighteen);
    // Chinese licences run 6 years, then 10 at each renewal; a few people let theirs lapse.
    let validUntil = addYears(issuedDay, 6);
    while (validUntil < this.asOfDay && random.chance(0.97)) validUntil = addYears(validUntil, 10);
    const status = random.chance(0.95) ? "VALID" : random.chance(0.6) ? "SUSPENDED" : "REVOKED";
    this.sink("traffic", {
      kind: "driverLicense",
      personId: member.id,
      // A mainland licence carries its holder's citizen identity number.
      number: member.id,
      class: LICENSE_CLASSES.pick(random),
      issuedOn: dateOf(issuedDay),
      validUntil: dateOf(validUntil),
      status,
    });
    return status === "VALID" && validUntil >= this.asOfDay ? "valid" : "invalid";
  }

  private plate(random: Random, regionCode: string): string {
    const province = regionCode.slice(0, 2);
    const letter =
      province === "11"
        ? random.pick(BEIJING_PLATE_LETTERS)
        : (PLATE_LETTERS[(Number(regionCode.slice(2, 4)) - 1) % PLATE_LETTERS.length] ?? "A");
    const prefix = (PLATE_PREFIX[province] ?? "京") + letter;
    const counter = this.plateCounters.get(prefix) ?? 0;
    this.plateCounters.set(prefix, counter + 1);
    // One letter-or-digit and four digits, unique per prefix until 340,000 plates.
    const code = scramble(counter + plateOffset(prefix), 340_000);
    return `${prefix}${PLATE_CHARACTERS[Math.floor(code / 10_000)]}${String(code % 10_000).padStart(4, "0")}`;
  }

  private emitVehicle(
    random: Random,
    ownerId: string,
    vehicleKind: string,
    regionCode: string,
    registeredDay: number,
    deregisteredDay: number | null,
  ): void {
    this.sink("traffic", {
      kind: "vehicle",
      plate: this.plate(random, regionCode),
      ownerId,
      vehicleKind,
      region: regionCode,
      registeredOn: dateOf(registeredDay),
      deregisteredOn: deregisteredDay === null ? null : dateOf(deregisteredDay),
    });
  }

  /** Emits a person's vehicles; true when one is a passenger car registered in Beijing now. */
  private emitVehicles(
    random: Random,
    household: Household,
    member: Member,
    age: number,
    hasLicense: boolean,
  ): boolean {
    if (age < 20 || !random.chance(hasLicense ? 0.42 : 0.03)) return false;
    const beijingHukou = member.hukouRegion.startsWith("11");
    let ownsCarInBeijing = false;
    const count = random.chance(0.85) ? 1 : 2;
    for (let i = 0; i < count; i++) {
      let regionCode: string;
      if (beijingHukou) {
        regionCode = random.chance(0.85)
          ? (household.beijingDistrict ?? member.hukouRegion)
          : random.pick(this.countiesOf("13"));
      } else if (household.beijingDistrict !== null && random.chance(0.12)) {
        regionCode = household.beijingDistrict;
      } else {
        regionCode = member.hukouRegion;
      }
      const earliest = Math.max(addYears(member.birthDay, 20), dayOf(1995, 1, 1));
      if (earliest >= this.asOfDay - 10) return ownsCarInBeijing;
      const registeredDay = earliest + random.int(this.asOfDay - 10 - earliest);
      let deregisteredDay: number | null = null;
      if (random.chance(0.15) && registeredDay + 365 < this.asOfDay - 1) {
        deregisteredDay = registeredDay + 365 + random.int(this.asOfDay - 1 - registeredDay - 365);
      }
      const vehicleKind = VEHICLE_KINDS.pick(random);
      this.emitVehicle(random, member.id, vehicleKind, regionCode, registeredDay, deregisteredDay);
      if (vehicleKind === "PASSENGER_CAR" && regionCode.startsWith("11") && !deregisteredDay) {
        ownsCarInBeijing = true;
      }
    }
    return ownsCarInBeijing;
  }

  private organizationName(random: Random, orgKind: string, regionCode: string): string {
    const place = regionCode.startsWith("11") ? "北京" : shortProvinceName(regionCode);
    const trade = random.pick(TRADE_NAME_CHARACTERS) + random.pick(TRADE_NAME_CHARACTERS);
    switch (orgKind) {
      case "INDIVIDUAL_BUSINESS": {
        const district = (region(regionCode)?.name ?? "").replace(/^.*?(市|州|盟)/, "");
        return `${district}${SURNAMES.pick(random)}记${random.pick(SHOP_KINDS)}`;
      }
      case "PUBLIC_INSTITUTION":
        return `${place}市${trade}${random.pick(["中学", "小学", "医院", "图书馆", "研究所"])}`;
      case "SOCIAL_ORGANIZATION":
        return `${place}${random.pick(INDUSTRIES)}协会`;
      default:
        return `${place}${trade}${random.pick(INDUSTRIES)}有限公司`;
    }
  }

  private uscc(orgKind: string, regionCode: string): string {
    const authority = ORGANIZATION_AUTHORITY[orgKind] ?? "91";
    // New registrations carry organisation codes beginning "MA"; the counter keeps them unique.
    const body = `MA${encode(scramble(this.organizationCounter++, 887_503_681), USCC_ALPHABET, 6)}`;
    const first17 = `${authority}${regionCode}${body}${organizationCodeCheck(body)}`;
    return first17 + (usccCheckCharacter(first17) ?? "0");
  }

  private emitOrganization(random: Random, household: Household, member: Member): void {
    const orgKind = ORGANIZATION_KINDS.pick(random);
    const regionCode =
      household.beijingDistrict !== null && random.chance(0.8)
        ? BEIJING_DISTRICTS.pick(random)
        : random.chance(0.7)
          ? member.hukouRegion
          : random.pick(this.countiesOf(member.hukouRegion.slice(0, 2)));
    const status = ORGANIZATION_STATUSES.pick(random);
    const earliest = Math.max(addYears(member.birthDay, 22), dayOf(1995, 1, 1));
    const establishedDay = earliest + random.int(Math.max(1, this.asOfDay - 60 - earliest));
    const uscc = this.uscc(orgKind, regionCode);
    this.sink("market", {
      kind: "organization",
      uscc,
      name: this.organizationName(random, orgKind, regionCode),
      orgKind,
      legalRepresentativeId: member.id,
      region: regionCode,
      status,
      establishedOn: dateOf(establishedDay),
    });
    const inBeijing = regionCode.startsWith("11");
    if (status !== "ACTIVE") this.note("organizationNotActive", uscc);
    else if (!inBeijing) this.note("organizationOutsideBeijing", uscc);
    if (status === "ACTIVE" && inBeijing && orgKind === "ENTERPRISE") {
      // Later Beijing workers are employed here (a ring of recent employers keeps memory flat).
      if (this.employers.length < 256) this.employers.push(uscc);
      else this.employers[this.employerCursor++ % 256] = uscc;
    }

    // The day the organisation stopped trading, when it did.
    let closedDay: number | null = null;
    if (status !== "ACTIVE") {
      const from = establishedDay + 365;
      closedDay = from < this.asOfDay - 30 ? from + random.int(this.asOfDay - 30 - from) : null;
    }
    const endMonth = closedDay === null ? this.asOfMonth - 1 : monthOfDay(closedDay);
    const startMonth = Math.max(monthOfDay(establishedDay) + 1, this.asOfMonth - 36);
    let lastYearVat = 0;
    if (orgKind === "ENTERPRISE" || orgKind === "INDIVIDUAL_BUSINESS") {
      const size = orgKind === "ENTERPRISE" ? ENTERPRISE_SIZES.pick(random) : "micro";
      lastYearVat = this.emitVat(random, uscc, regionCode, size, startMonth, endMonth);
      if (orgKind === "ENTERPRISE" && status === "ACTIVE" && random.chance(0.25)) {
        const vehicles = random.between(1, 4);
        for (let i = 0; i < vehicles; i++) {
          const registeredDay =
            establishedDay + random.int(Math.max(1, this.asOfDay - establishedDay));
          const kind = random.chance(0.6) ? "PASSENGER_CAR" : "TRUCK";
          this.emitVehicle(random, uscc, kind, regionCode, registeredDay, null);
        }
      }
    }
    if (status === "ACTIVE" && inBeijing) {
      if (lastYearVat >= 5_000_000) {
        this.note("eligibleOrganization", uscc);
        this.note("legalRepresentative", member.id);
        if (lastYearVat >= 55_000_000) this.note("organizationWithLargeQuota", uscc);
      } else {
        this.note("organizationVatInsufficient", uscc);
      }
    }
  }

  /**
   * VAT returns from `startMonth` to `endMonth`: quarterly for small taxpayers, monthly for the
   * others, paid on the 15th of the following month. Returns last year's total (fen, paid by the
   * reference day).
   */
  private emitVat(
    random: Random,
    uscc: string,
    regionCode: string,
    size: EnterpriseSize,
    startMonth: number,
    endMonth: number,
  ): number {
    const [low, high] = ANNUAL_VAT_YUAN[size];
    const annualFen = (low + random.int(high - low)) * 100;
    const quarterly = size === "micro" || size === "small";
    const lastYear = yearOfMonth(this.asOfMonth) - 1;
    let lastYearTotal = 0;
    for (let month = startMonth; month <= endMonth; month++) {
      if (quarterly && month % 3 !== 2) continue;
      const share = quarterly ? 0.25 : 1 / 12;
      const amount = Math.round(annualFen * share * (0.7 + random.float() * 0.6));
      const paidDay = dayInMonth(month + 1, 15);
      if (paidDay > this.asOfDay) continue;
      this.sink("tax", {
        kind: "vat",
        uscc,
        period: monthOf(month),
        region: regionCode,
        amount: formatMoney(amount),
        paidOn: dateOf(paidDay),
      });
      if (yearOfMonth(month) === lastYear) lastYearTotal += amount;
    }
    return lastYearTotal;
  }

  private employer(random: Random): string | null {
    return this.employers.length === 0 || random.chance(0.05) ? null : random.pick(this.employers);
  }

  /** Residence permits and Beijing work history of a person living in Beijing on another hukou. */
  private emitMigrantLife(
    random: Random,
    household: Household,
    member: Member,
    eligibleOtherwise: boolean,
  ): void {
    const district = household.beijingDistrict as string;
    const draw = random.float();
    if (draw < 0.08) {
      // Talent scheme: a three-year work residence permit; a few have let it lapse.
      const expired = random.chance(0.15);
      const validFrom = expired
        ? this.asOfDay - 3 * 365 - random.between(30, 400)
        : this.asOfDay - random.int(3 * 365 - 30);
      this.emitPermit("WORK_RESIDENCE", member, district, validFrom, addYears(validFrom, 3) - 1);
      const months = random.between(24, 72);
      this.emitEmployment(random, member, "local", this.lastPaidMonth - months + 1, district);
      if (!expired && eligibleOtherwise) this.note("workResidencePermitHolder", member.id);
      return;
    }
    if (draw > 0.88) {
      // Recently arrived: a few months of contributions, no permit yet.
      const months = random.between(1, 11);
      this.emitEmployment(random, member, "short", this.lastPaidMonth - months + 1, district);
      return;
    }
    const kind = MIGRANT_HISTORIES.pick(random);
    // Histories reach just past the 60 months the lottery looks at: older months cost volume.
    const months = kind === "short" ? random.between(6, 59) : random.between(61, 66);
    const firstMonth = this.lastPaidMonth - months + 1;
    // Residence permits run one year and are renewed; 12% let the current one lapse.
    const lapsed = random.chance(0.12);
    const currentFrom = lapsed
      ? this.asOfDay - 365 - random.between(10, 200)
      : this.asOfDay - random.int(330);
    const years = Math.min(5, Math.ceil(months / 12));
    for (let k = years - 1; k >= 0; k--) {
      const validFrom = addYears(currentFrom, -k);
      this.emitPermit("RESIDENCE", member, district, validFrom, addYears(validFrom, 1) - 1);
    }
    if (kind === "short" && random.chance(0.4)) {
      // Worked at home before coming to Beijing: long enough in all, but not in Beijing.
      const homeMonths = random.between(12, 36);
      this.emitEmployment(random, member, "home", firstMonth - homeMonths, member.hukouRegion, {
        lastMonth: firstMonth - 1,
      });
    }
    const latePaid = this.emitEmployment(random, member, kind, firstMonth, district);
    if (!eligibleOtherwise) return;
    if (lapsed) {
      if (kind === "full") this.note("migrantExpiredPermit", member.id);
      return;
    }
    switch (kind) {
      case "full":
        this.note("migrantFullHistory", member.id);
        return;
      case "backPaid":
        if (latePaid) this.note("migrantBackPaid", member.id);
        return;
      case "gap":
        this.note("migrantWithGap", member.id);
        return;
      case "short":
        this.note("migrantShortHistory", member.id);
        return;
      case "lowIncome":
        this.note("migrantWithoutIncomeTax", member.id);
        return;
    }
  }

  private emitPermit(
    permitKind: "RESIDENCE" | "WORK_RESIDENCE",
    member: Member,
    district: string,
    validFrom: number,
    validTo: number,
  ): void {
    const series = permitKind === "RESIDENCE" ? "JZ" : "GZ";
    this.sink("hukou", {
      kind: "residencePermit",
      personId: member.id,
      number: `BJ${series}${district}${String(++this.permitCounter).padStart(9, "0")}`,
      permitKind,
      region: district,
      validFrom: dateOf(validFrom),
      validTo: dateOf(validTo),
    });
  }

  /**
   * Monthly contributions from `firstMonth` to the last paid month (or `lastMonth`), with income
   * tax withheld when the salary is above the threshold. The history kind shapes it:
   * `backPaid` pays a few months late, `gap` misses up to 6 months within the last 60,
   * `lowIncome` earns under the threshold for one of the last 5 years. Returns whether some month
   * was paid late.
   */
  private emitEmployment(
    random: Random,
    member: Member,
    kind: HistoryKind,
    firstMonth: number,
    regionCode: string,
    options: { lastMonth?: number } = {},
  ): boolean {
    const lastMonth = options.lastMonth ?? this.lastPaidMonth;
    const windowStart = this.asOfMonth - 60;
    let gapFrom = -1;
    let gapTo = -1;
    if (kind === "gap") {
      gapFrom = windowStart + random.int(54);
      gapTo = gapFrom + random.between(1, 6) - 1;
    }
    const latePaid = new Set<number>();
    if (kind === "backPaid") {
      const count = random.between(2, 6);
      for (let i = 0; i < count; i++) latePaid.add(windowStart + random.int(58));
    }
    const lowIncomeYear =
      kind === "lowIncome" ? yearOfMonth(this.asOfMonth) - random.between(1, 5) : -1;
    const salary =
      kind === "full" || kind === "backPaid" || kind === "gap" || kind === "lowIncome"
        ? 10_000 + Math.floor(random.float() ** 2 * 30_000)
        : 4_000 + Math.floor(random.float() ** 2 * 30_000);
    const deductions = random.int(4) * 1_000;
    let employer = kind === "home" ? null : this.employer(random);
    let anyLate = false;
    for (let month = firstMonth; month <= lastMonth; month++) {
      if (month >= gapFrom && month <= gapTo) {
        employer = this.employer(random);
        continue;
      }
      let paidDay = dayInMonth(month, 15);
      if (latePaid.has(month)) {
        // Back-paid within the last months: counts for today, not for an earlier application.
        const from = Math.max(paidDay + 60, this.asOfDay - 120);
        paidDay = from + random.int(Math.max(1, this.asOfDay - from));
        anyLate = true;
      }
      if (paidDay > this.asOfDay) continue;
      this.sink("social", {
        kind: "contribution",
        personId: member.id,
        month: monthOf(month),
        region: regionCode,
        employer,
        paidOn: dateOf(paidDay),
      });
      // A raise of about 4% a year; the low-income year of `lowIncome` falls under the threshold.
      const year = yearOfMonth(month);
      const monthSalary =
        year === lowIncomeYear
          ? 4_500
          : Math.round(salary * 1.04 ** (year - yearOfMonth(firstMonth)));
      const tax = monthlyIncomeTaxFen(monthSalary, deductions);
      const taxPaidDay = dayInMonth(month + 1, 15);
      if (tax > 0 && taxPaidDay <= this.asOfDay) {
        this.sink("tax", {
          kind: "incomeTax",
          personId: member.id,
          period: monthOf(month),
          region: regionCode,
          amount: formatMoney(tax),
          paidOn: dateOf(taxPaidDay),
        });
      }
    }
    return anyLate;
  }
}

function ageOnDays(birthDay: number, onDay: number): number {
  const birth = new Date(birthDay * MS_PER_DAY);
  const on = new Date(onDay * MS_PER_DAY);
  let age = on.getUTCFullYear() - birth.getUTCFullYear();
  const beforeBirthday =
    on.getUTCMonth() < birth.getUTCMonth() ||
    (on.getUTCMonth() === birth.getUTCMonth() && on.getUTCDate() < birth.getUTCDate());
  if (beforeBirthday) age -= 1;
  return age;
}

/** Where a plate prefix's sequence starts, so that prefixes do not share suffixes. */
function plateOffset(prefix: string): number {
  let hash = 0;
  for (const character of prefix) hash = (hash * 31 + (character.codePointAt(0) ?? 0)) % 340_000;
  return hash;
}

function surnameOf(name: string): string {
  return name.slice(0, 1);
}

/**
 * Income tax withheld for a month's salary (yuan) in fen: the monthly brackets over the 5000
 * yuan threshold after the employee's 10.5% social insurance share and special deductions.
 */
function monthlyIncomeTaxFen(salary: number, deductions: number): number {
  const taxable = salary * 0.895 - 5_000 - deductions;
  if (taxable <= 0) return 0;
  for (const [ceiling, rate, quick] of TAX_BRACKETS) {
    if (taxable <= ceiling) return Math.round((taxable * rate - quick) * 100);
  }
  return 0;
}

const TAX_BRACKETS: ReadonlyArray<readonly [number, number, number]> = [
  [3_000, 0.03, 0],
  [12_000, 0.1, 210],
  [25_000, 0.2, 1_410],
  [35_000, 0.25, 2_660],
  [55_000, 0.3, 4_410],
  [80_000, 0.35, 7_160],
  [Number.POSITIVE_INFINITY, 0.45, 15_160],
];

const STREET_SUFFIXES = [..."庄屯营店园河"];

const HEAD_BIRTH_DECADES = new Weighted<number>([
  [1940, 6],
  [1950, 12],
  [1960, 17],
  [1970, 19],
  [1980, 22],
  [1990, 24],
]);

const CHILDREN = new Weighted<number>([
  [0, 14],
  [1, 50],
  [2, 31],
  [3, 5],
]);

const VEHICLE_KINDS = new Weighted<string>([
  ["PASSENGER_CAR", 92],
  ["MOTORCYCLE", 5],
  ["TRUCK", 3],
]);

const ORGANIZATION_KINDS = new Weighted<string>([
  ["ENTERPRISE", 80],
  ["INDIVIDUAL_BUSINESS", 14],
  ["PUBLIC_INSTITUTION", 3],
  ["SOCIAL_ORGANIZATION", 3],
]);

/** Registration authority and kind: the first two characters of a USCC. */
const ORGANIZATION_AUTHORITY: Record<string, string> = {
  ENTERPRISE: "91",
  INDIVIDUAL_BUSINESS: "92",
  PUBLIC_INSTITUTION: "12",
  SOCIAL_ORGANIZATION: "51",
};

const ORGANIZATION_STATUSES = new Weighted<string>([
  ["ACTIVE", 85],
  ["REVOKED", 6],
  ["DEREGISTERED", 9],
]);

type EnterpriseSize = "micro" | "small" | "medium" | "large";

const ENTERPRISE_SIZES = new Weighted<EnterpriseSize>([
  ["micro", 45],
  ["small", 35],
  ["medium", 17],
  ["large", 3],
]);

/** Range of annual VAT (yuan) by size: small straddles the 50000 yuan lottery threshold. */
const ANNUAL_VAT_YUAN: Record<EnterpriseSize, readonly [number, number]> = {
  micro: [3_000, 45_000],
  small: [35_000, 200_000],
  medium: [200_000, 1_500_000],
  large: [1_500_000, 4_000_000],
};

const MIGRANT_HISTORIES = new Weighted<HistoryKind>([
  ["full", 30],
  ["backPaid", 12],
  ["gap", 18],
  ["short", 30],
  ["lowIncome", 10],
]);

// ---------------------------------------------------------------------------------------------
// Seeding the department databases.

export interface SeedOptions extends PopulationOptions {
  /** Data directory (the databases of the seeded departments are replaced). */
  dir: string;
  /**
   * Departments to write (default: all). The population is the same whatever is written, so
   * separate processes can seed separate departments in parallel.
   */
  departments?: readonly Department[];
  /** Records per commit in each department (default 50,000). */
  chunkSize?: number;
  /** Called every few thousand persons, for a progress display. */
  onProgress?: (persons: number) => void;
}

export interface SeedSummary {
  /** Persons in the population (whether or not hukou was written). */
  persons: number;
  records: number;
  byDepartment: Record<Department, number>;
  byKind: Record<string, number>;
  subjects: DemoSubjects;
  elapsedMs: number;
}

/**
 * Replaces the department databases in `dir` with the demo population. Every record passes
 * `parseRecord` (the import contract) and the department's writer; each department writes in its
 * own transaction, committed every `chunkSize` records so that memory stays flat.
 */
export function seedPopulation(options: SeedOptions): SeedSummary {
  const started = performance.now();
  const chunkSize = options.chunkSize ?? 50_000;
  const departments = options.departments ?? DEPARTMENTS;
  for (const department of departments) {
    const path = databasePath(department, options.dir);
    for (const file of [path, `${path}-wal`, `${path}-shm`]) {
      if (existsSync(file)) rmSync(file);
    }
  }
  const byDepartment = Object.fromEntries(DEPARTMENTS.map((d) => [d, 0])) as Record<
    Department,
    number
  >;
  const byKind: Record<string, number> = {};
  const writers = new Map(
    departments.map((department) => {
      const module = departmentModules[department];
      const database = openDepartmentDatabase(department, module.tables, { dir: options.dir });
      // A seed can be rerun from scratch: trade crash safety for speed while it writes. Memory
      // mapping only helps readers; without it the seed's memory is its page cache, bounded.
      database.sqlite.pragma("synchronous = OFF");
      database.sqlite.pragma("mmap_size = 0");
      database.sqlite.exec("BEGIN IMMEDIATE");
      const target = {
        database,
        write: module.writer(database.db) as (record: unknown) => void,
        pending: 0,
      };
      return [department, target] as const;
    }),
  );
  let persons = 0;
  let subjects: DemoSubjects;
  try {
    subjects = generatePopulation(options, (department, line) => {
      if (line.kind === "person" && ++persons % 5_000 === 0) options.onProgress?.(persons);
      const target = writers.get(department);
      if (target === undefined) return;
      const parsed = parseRecord(department, line);
      if (!parsed.ok) {
        throw new Error(
          `the demo population made an invalid ${department} record (${parsed.reason}): ${JSON.stringify(line)}`,
        );
      }
      target.write(parsed.record);
      byDepartment[department]++;
      byKind[line.kind] = (byKind[line.kind] ?? 0) + 1;
      if (++target.pending >= chunkSize) {
        target.database.sqlite.exec("COMMIT");
        target.database.sqlite.exec("BEGIN IMMEDIATE");
        target.pending = 0;
      }
    });
    for (const { database } of writers.values()) database.sqlite.exec("COMMIT");
  } catch (error) {
    for (const { database } of writers.values()) {
      if (database.sqlite.inTransaction) database.sqlite.exec("ROLLBACK");
    }
    throw error;
  } finally {
    for (const { database } of writers.values()) {
      database.sqlite.pragma("synchronous = NORMAL");
      database.close();
    }
  }
  options.onProgress?.(persons);
  return {
    persons,
    records: Object.values(byDepartment).reduce((sum, n) => sum + n, 0),
    byDepartment,
    byKind,
    subjects,
    elapsedMs: performance.now() - started,
  };
}

/** Demo subjects of a population, without writing it (the first households suffice). */
export function demoSubjects(options: PopulationOptions): DemoSubjects {
  return new PopulationGenerator(options, () => {}).run(true);
}

export function demoSubjectsFile(dir: string): string {
  return join(dir, "demo-subjects.json");
}

import { describe, expect, it } from "vitest";
import {
  genderOfPersonId,
  makePersonId,
  makeUscc,
  normalizePersonId,
  personIdProblem,
  usccProblem,
} from "../common/ids.ts";
import { isRecordedRegionCode, regionOrCode } from "../common/regions.ts";

describe("citizen identity number (GB 11643-1999)", () => {
  it("accepts the published example and normalises a lower-case x", () => {
    expect(personIdProblem("11010519491231002X")).toBeNull();
    expect(normalizePersonId("11010519491231002x")).toBe("11010519491231002X");
  });

  it("rejects every wrong check character", () => {
    for (const check of "0123456789") {
      expect(personIdProblem(`11010519491231002${check}`)).toBe("check character does not match");
    }
  });

  it("rejects impossible birth dates, wrong lengths and letters", () => {
    expect(personIdProblem("110105194902300021")).toMatch(/birth date/);
    expect(personIdProblem("11010519491231002")).toMatch(/17 digits/);
    expect(personIdProblem("1101051949123100A2")).toMatch(/17 digits/);
  });

  it("builds valid numbers whose sequence digit encodes gender", () => {
    const id = makePersonId("110105", "2000-02-29", 123);
    expect(personIdProblem(id)).toBeNull();
    expect(genderOfPersonId(id)).toBe("M");
    expect(genderOfPersonId(makePersonId("110105", "2000-02-29", 124))).toBe("F");
  });
});

describe("unified social credit code (GB 32100-2015)", () => {
  it("accepts the published example", () => {
    expect(usccProblem("91350100M000100Y43")).toBeNull();
    expect(usccProblem("91350100m000100y43")).toBeNull();
  });

  it("rejects wrong check characters and forbidden letters", () => {
    expect(usccProblem("91350100M000100Y44")).toBe("check character does not match");
    expect(usccProblem("91350100M000100Y4A")).toBe("check character does not match");
    expect(usccProblem("91350100I000100Y43")).toMatch(/18 characters/);
    expect(usccProblem("91350100M000100Y4")).toMatch(/18 characters/);
  });

  it("builds valid codes", () => {
    expect(usccProblem(makeUscc("110105", "MA01234X5"))).toBeNull();
  });
});

describe("region codes (GB/T 2260)", () => {
  it("names a current division, and keeps a withdrawn county's code in its province", () => {
    expect(regionOrCode("110105")).toEqual({
      code: "110105",
      name: "北京市朝阳区",
      province: "北京市",
    });
    // Chongwen district, merged into Dongcheng in 2010: still on records made before.
    expect(isRecordedRegionCode("110103")).toBe(true);
    expect(regionOrCode("110103")).toEqual({ code: "110103", name: "", province: "北京市" });
    expect(regionOrCode("990101")).toEqual({ code: "990101", name: "", province: "" });
  });
});

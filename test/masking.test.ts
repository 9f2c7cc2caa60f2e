import { describe, expect, it } from "vitest";
import { maskName, maskPersonId, maskRelatedPersonId, maskUscc } from "../common/masking.ts";

describe("masking rule", () => {
  it("keeps the region and the last four characters of an identity number", () => {
    expect(maskPersonId("110105198503121033")).toBe("110105********1033");
    expect(maskPersonId("11010519491231002X")).toBe("110105********002X");
  });

  it("keeps only the region of a related person's number (spouse, legal representative)", () => {
    expect(maskRelatedPersonId("110108198707081026")).toBe("110108************");
    expect(maskRelatedPersonId("short")).toBe("*****");
  });

  it("keeps the first and last character of a name", () => {
    expect(maskName("王建国")).toBe("王*国");
    expect(maskName("李娜")).toBe("李*");
    expect(maskName("欧阳建国")).toBe("欧**国");
    expect(maskName("张")).toBe("*");
  });

  it("keeps the start and end of a credit code", () => {
    expect(maskUscc("91110105MA01ABC1XD")).toBe("9111010********1XD");
  });
});

/** The bench's summaries of repeated measurements. */
import { describe, expect, it } from "vitest";
import { medianInterval, middle } from "../scripts/bench/statistics.ts";

describe("the median of pairs", () => {
  it("is the middle value, or the mean of the middle two", () => {
    expect(middle([3, 1, 2])).toBe(2);
    expect(middle([4, 1, 3, 2])).toBe(2.5);
  });

  it("comes with the order statistics that bound it at the given level", () => {
    const twenty = Array.from({ length: 20 }, (_, i) => 20 - i); // 20 … 1, unsorted
    expect(medianInterval(twenty)).toEqual([6, 15]);
    // Nine values: P(X ≤ 1) = 10/512 ≈ 0.0195 ≤ 0.025 < P(X ≤ 2) = 46/512: the 2nd and 8th.
    expect(medianInterval([9, 8, 7, 6, 5, 4, 3, 2, 1])).toEqual([2, 8]);
    // Six values: P(X ≤ 0) = 1/64 ≈ 0.016: the extremes; five are too few (1/32 > 0.025).
    expect(medianInterval([6, 5, 4, 3, 2, 1])).toEqual([1, 6]);
    expect(medianInterval([5, 4, 3, 2, 1])).toBeNull();
    expect(medianInterval([5, 4, 3, 2, 1], 0.9)).toEqual([1, 5]);
  });
});

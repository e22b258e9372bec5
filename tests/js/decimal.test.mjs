// static/js/lib/decimal.js: the exact decimals the order form checks and sums with.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  affordable, BPS, cost, feeOf, floorTo, format, max, onGrid, ONE, parse, places, SCALE, share, trim,
} from "../../static/js/lib/decimal.js";

const u = (text) => parse(text); // units, for readability

describe("parse", () => {
  test("plain decimals become units of 10**-18", () => {
    assert.equal(SCALE, 18);
    assert.equal(parse("1"), ONE);
    assert.equal(parse("5.2"), 52n * 10n ** 17n);
    assert.equal(parse("0.000000000000000001"), 1n);
    assert.equal(parse("0"), 0n);
    assert.equal(parse("007.50"), parse("7.5"));
  });

  test("a comma is a decimal point, and spaces around are ignored", () => {
    assert.equal(parse("5,2"), parse("5.2"));
    assert.equal(parse("  3.25 "), parse("3.25"));
  });

  test("a bare point on either side is still a number", () => {
    assert.equal(parse(".5"), ONE / 2n);
    assert.equal(parse("5."), 5n * ONE);
  });

  test("trailing zeros past 18 places are fine, digits past 18 are not", () => {
    assert.equal(parse(`1.${"0".repeat(30)}`), ONE);
    assert.equal(parse(`0.${"0".repeat(18)}1`), null);
  });

  test("anything but a plain non-negative decimal is null", () => {
    for (const text of ["", " ", ".", ",", "-1", "+1", "1e3", "1.2.3", "1,2,3", "abc", "0x10", "1 000", "½", "NaN", "Infinity"]) {
      assert.equal(parse(text), null, JSON.stringify(text));
    }
    assert.equal(parse(null), null);
    assert.equal(parse(undefined), null);
  });

  test("numbers are read through their string form", () => {
    assert.equal(parse(0.1), parse("0.1"));
    assert.equal(parse(42), 42n * ONE);
  });
});

describe("format and trim", () => {
  test("format writes exactly `places` decimals, truncated toward zero", () => {
    assert.equal(format(u("5.2"), 2), "5.20");
    assert.equal(format(u("5.239"), 2), "5.23");
    assert.equal(format(u("0.005"), 2), "0.00");
    assert.equal(format(u("1234.5"), 0), "1234");
    assert.equal(format(0n, 3), "0.000");
    assert.equal(format(1n, 18), "0.000000000000000001");
  });

  test("negative values keep their sign unless they round to zero", () => {
    assert.equal(format(-u("1.5"), 1), "-1.5");
    assert.equal(format(-u("1.59"), 1), "-1.5");
    assert.equal(format(-u("0.001"), 2), "0.00");
  });

  test("trim drops trailing zeros beyond `keep` decimals", () => {
    assert.equal(trim(u("52"), 6), "52.00");
    assert.equal(trim(u("52.5"), 6), "52.50");
    assert.equal(trim(u("52.123"), 6), "52.123");
    assert.equal(trim(u("52.1234567"), 6), "52.123456");
    assert.equal(trim(u("52"), 6, 0), "52");
    assert.equal(trim(u("0.5"), 6, 0), "0.5");
    assert.equal(trim(u("7"), 0), "7");
  });

  test("format and parse round-trip", () => {
    for (const text of ["0.000001", "1.5", "123456789.123456789", "0.10"]) {
      assert.equal(parse(format(parse(text), places(text))), parse(text));
    }
  });
});

describe("places", () => {
  test("counts the decimals a value is written with", () => {
    assert.equal(places("0.01"), 2);
    assert.equal(places("0.010"), 3);
    assert.equal(places("1"), 0);
    assert.equal(places(5), 0);
  });
});

describe("grids: ticks and lots", () => {
  test("onGrid is exact where floats are not (0.3 on a 0.1 grid)", () => {
    assert.notEqual(0.3 % 0.1, 0); // why this module exists
    assert.ok(onGrid(u("0.3"), u("0.1")));
    assert.ok(onGrid(u("5.25"), u("0.25")));
    assert.ok(!onGrid(u("5.2"), u("0.25")));
    assert.ok(!onGrid(u("1.0001"), u("0.001")));
  });

  test("a zero step is no grid", () => {
    assert.ok(onGrid(u("1.23456"), 0n));
    assert.equal(floorTo(u("1.23456"), 0n), u("1.23456"));
  });

  test("floorTo rounds down onto the grid", () => {
    assert.equal(floorTo(u("1.23456"), u("0.01")), u("1.23"));
    assert.equal(floorTo(u("0.009"), u("0.01")), 0n);
    assert.equal(floorTo(u("2"), u("0.5")), u("2"));
  });
});

describe("totals and fees", () => {
  test("cost multiplies price by amount exactly", () => {
    assert.equal(cost(u("0.1"), u("3")), u("0.3"));
    assert.equal(cost(u("5.2"), u("1.5")), u("7.8"));
    assert.equal(cost(u("2500.25"), u("0.004")), u("10.001"));
    assert.equal(cost(u("123456789.123456789"), u("1000")), u("123456789123.456789"));
  });

  test("cost truncates below 10**-18", () => {
    assert.equal(cost(1n, 1n), 0n);
    assert.equal(cost(u("0.000000001"), u("0.000000001")), 1n);
  });

  test("feeOf takes basis points of a value", () => {
    assert.equal(BPS, 10_000n);
    assert.equal(feeOf(u("100"), 10n), u("0.1"));
    assert.equal(feeOf(u("7.8"), 25n), u("0.0195"));
    assert.equal(feeOf(u("100"), 0n), 0n);
  });

  test("max of two bigints", () => {
    assert.equal(max(2n, 3n), 3n);
    assert.equal(max(-2n, 0n), 0n);
  });
});

describe("affordable", () => {
  test("the amount a budget buys at a price, the fee paid on top", () => {
    assert.equal(affordable(u("100"), u("2"), 0n), u("50"));
    const qty = affordable(u("100"), u("2"), 10n);
    const spent = cost(u("2"), qty);
    assert.ok(spent + feeOf(spent, 10n) <= u("100"));
    assert.ok(u("100") - (spent + feeOf(spent, 10n)) < u("0.000001"));
  });

  test("rounded down, the lot grid never overspends", () => {
    const qty = floorTo(affordable(u("10"), u("3"), 20n), u("0.001"));
    assert.equal(qty, u("3.326"));
    assert.ok(cost(u("3"), qty) + feeOf(cost(u("3"), qty), 20n) <= u("10"));
  });
});

describe("share", () => {
  test("part of a whole with three decimals, for the depth bars", () => {
    assert.equal(share(u("1"), u("4")), "0.250");
    assert.equal(share(u("1"), u("3")), "0.333");
    assert.equal(share(u("2"), u("2")), "1.000");
    assert.equal(share(u("1"), u("3"), 1), "0.3");
  });

  test("an empty book has no depth", () => {
    assert.equal(share(0n, 0n), "0");
    assert.equal(share(u("1"), 0n), "0");
  });
});

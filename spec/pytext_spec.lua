--- nvsgen.pytext: white space and digits as Python's str and int() see them.
local pytext = require("nvsgen.pytext")

describe("nvsgen.pytext", function()
  it("turns Unicode digits and spaces into ASCII for number parsing", function()
    assert.are.equal("12", pytext.ascii_number("12"))
    assert.are.equal("0x12", pytext.ascii_number("0x\u{FF11}\u{FF12}"))
    assert.are.equal(" 3 ", pytext.ascii_number("\u{A0}\u{663}\u{3000}"))
    assert.are.equal("09", pytext.ascii_number("\u{1D7CE}\u{1D7D7}"))
    assert.is_nil(pytext.ascii_number("\u{66A}"))    -- a sign, not a digit
    assert.is_nil(pytext.ascii_number("\u{65F}"))    -- just below a zero
    assert.is_nil(pytext.ascii_number("\u{200B}"))   -- zero width: not a space
    assert.is_nil(pytext.ascii_number("5\255"))      -- not UTF-8
  end)

  it("strips as str.strip() does", function()
    assert.are.equal("a b", pytext.strip("\28\u{A0} \u{2000}a b\u{3000}\u{200A}\t\31"))
    assert.are.equal("", pytext.strip("\u{2028}\u{2029}"))
    assert.are.equal("\u{200B}x", pytext.strip("\u{200B}x"))
    assert.are.equal("x\u{E9}", pytext.strip("x\u{E9}\u{85}"))
    assert.are.equal("abc", pytext.strip("abc"))
  end)

  it("tells lines of white space only, as line.isspace() does", function()
    assert.is_true(pytext.is_blank_line("\n"))
    assert.is_true(pytext.is_blank_line(" \t\f\v\28\u{A0}\u{3000}\n"))
    assert.is_true(pytext.is_blank_line("  "))
    assert.is_false(pytext.is_blank_line(" ,\n"))
    assert.is_false(pytext.is_blank_line("\u{200B}\n"))
    assert.is_false(pytext.is_blank_line("\"\"\n"))
  end)
end)

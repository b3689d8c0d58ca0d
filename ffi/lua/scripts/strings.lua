-- Strings: interning, concatenation, buffers, patterns, formatting, large strings (which
-- come from the system allocator through agc_realloc).
local parts = {}
for i = 1, 50000 do parts[#parts + 1] = string.format("%05d:%x;", i, i) end
local s = table.concat(parts)
assert(#s == 50000 * 7 + (50000 - 4096) + 0 or #s > 300000)
assert(select(2, s:gsub(";", ";")) == 50000)
local big = string.rep("abc", 1000000)
assert(#big == 3000000 and big:sub(-3) == "abc")
local up = big:upper()
assert(up:sub(1, 6) == "ABCABC")
local words = 0
for w in ("the quick brown fox jumps over the lazy dog "):rep(10000):gmatch("%a+") do
    words = words + 1
end
assert(words == 90000)
local r = ("hello world"):gsub("o", "0")
assert(r == "hell0 w0rld")
local acc = ""
for i = 1, 3000 do acc = acc .. i end -- quadratic: many reallocations
assert(#acc > 10000)
assert(string.pack("<i4", 7):byte(1) == 7)
assert(utf8.len("héllo") == 5)

-- Tables: array and hash parts growing and shrinking, sorting, removal, nested tables.
local t = {}
for i = 1, 200000 do t[i] = i * 2 end
assert(#t == 200000 and t[12345] == 24690)
for i = 200000, 100001, -1 do t[i] = nil end
assert(#t == 100000)
local h = {}
for i = 1, 100000 do h["k" .. i] = i end
local n = 0
for k, v in pairs(h) do n = n + 1; assert(h[k] == v) end
assert(n == 100000)
for i = 1, 100000, 2 do h["k" .. i] = nil end
n = 0
for _ in pairs(h) do n = n + 1 end
assert(n == 50000)
local s = {}
for i = 1, 50000 do s[i] = (i * 7919) % 50021 end
table.sort(s)
for i = 2, #s do assert(s[i - 1] <= s[i]) end
local nested = {}
for i = 1, 20000 do nested[i] = { i, tostring(i), { i } } end
assert(nested[777][3][1] == 777 and nested[777][2] == "777")
table.insert(nested, 1, "first")
assert(table.remove(nested, 1) == "first")
assert(table.concat({ 1, 2, 3 }, ",") == "1,2,3")

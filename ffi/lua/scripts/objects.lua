-- Metatables and an object system: inheritance, __index/__newindex, __eq/__lt, __concat,
-- __call, __len, __close (to-be-closed variables), and many short-lived objects.
local Point = {}
Point.__index = Point
function Point.new(x, y) return setmetatable({ x = x, y = y }, Point) end
function Point.__add(a, b) return Point.new(a.x + b.x, a.y + b.y) end
function Point.__eq(a, b) return a.x == b.x and a.y == b.y end
function Point.__lt(a, b) return a.x < b.x end
function Point.__tostring(p) return "(" .. p.x .. "," .. p.y .. ")" end
local acc = Point.new(0, 0)
for i = 1, 100000 do acc = acc + Point.new(i, -i) end
assert(acc == Point.new(5000050000, -5000050000))
assert(tostring(Point.new(1, 2)) == "(1,2)")
local Point3 = setmetatable({}, { __index = Point })
Point3.__index = Point3
function Point3.new(x, y, z) local p = Point.new(x, y); p.z = z; return setmetatable(p, Point3) end
assert(Point3.new(1, 2, 3).z == 3 and Point3.new(1, 2, 3).x == 1)
local log = {}
local proxy = setmetatable({}, { __newindex = function(t, k, v) log[#log + 1] = k; rawset(t, k, v) end })
for i = 1, 100 do proxy["f" .. i] = i end
assert(#log == 100)
local callable = setmetatable({}, { __call = function(_, a) return a * 2 end, __len = function() return 7 end })
assert(callable(21) == 42 and #callable == 7)
local closed = false
do
    local _ <close> = setmetatable({}, { __close = function() closed = true end })
end
assert(closed)

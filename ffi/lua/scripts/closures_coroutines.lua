-- Closures, upvalues, coroutines (each has its own stack, grown by realloc), varargs, errors.
local function counter()
    local c = 0
    return function() c = c + 1; return c end
end
local cs = {}
for i = 1, 10000 do cs[i] = counter() end
for i = 1, 10000 do cs[i](); cs[i]() end
assert(cs[5000]() == 3)
local function gen(n)
    return coroutine.wrap(function()
        for i = 1, n do coroutine.yield(i) end
    end)
end
local total = 0
for _ = 1, 200 do
    for v in gen(500) do total = total + v end
end
assert(total == 200 * 500 * 501 / 2)
local function deep(n) if n == 0 then return 0 end return 1 + deep(n - 1) end
assert(deep(10000) == 10000)
local ok, err = pcall(function() error({ code = 42 }) end)
assert(not ok and err.code == 42)
local function va(...) return select("#", ...), ... end
assert(va(1, nil, 3) == 3)
local co = coroutine.create(function(a) local b = coroutine.yield(a + 1); return b * 2 end)
assert(select(2, coroutine.resume(co, 1)) == 2)
assert(select(2, coroutine.resume(co, 5)) == 10)

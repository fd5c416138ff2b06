# cython_co_flags.cmake - run after Cython on the limited-API _core.c (cmake -DFILE=... -P).
#
# In the limited API, Cython's module init imports `inspect` only to read seven CO_* code-object
# flags: about 12-23 ms of a function's cold start (ast, tokenize, dis, ...), paid at the first
# start(). CMakeLists.txt defines those flags at compile time with the values of the build
# interpreter's own `inspect` (CPython has not changed them since 3.5), which makes Cython skip
# every read; this script then removes the import that would remain. The file is left as Cython
# wrote it, with a warning, if Cython's code has changed shape (tests/py/test_import_cost.py
# then says so).
file(READ "${FILE}" src)
set(import_line "    inspect = PyImport_ImportModule(\"inspect\");\n")
string(FIND "${src}" "${import_line}" at)
if(at EQUAL -1)
  message(WARNING "cython_co_flags.cmake: Cython's `inspect` import not found in ${FILE}: left as it is")
  return()
endif()
set(replacement
"#if defined(CO_OPTIMIZED) && defined(CO_NEWLOCALS) && defined(CO_VARARGS) && defined(CO_VARKEYWORDS) && \\
    defined(CO_ASYNC_GENERATOR) && defined(CO_GENERATOR) && defined(CO_COROUTINE)
    inspect = Py_None; /* every flag is known at compile time (cmake/cython_co_flags.cmake) */
    Py_INCREF(inspect);
#else
${import_line}#endif
")
string(REPLACE "${import_line}" "${replacement}" src "${src}")
file(WRITE "${FILE}" "${src}")

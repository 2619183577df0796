// test/support/tsan_suppressions.cpp: ThreadSanitizer reports that are not
// races, suppressed for the test programs (linked into each of them in a
// -fsanitize=thread build only; ThreadSanitizer calls this function at
// start-up).
//
// exception_ptr: the reference count of an exception object is updated with
// atomic read-modify-writes inside libstdc++, which is not built with
// -fsanitize=thread, so ThreadSanitizer does not see the ordering they give.
// A coroutine that fails on a context thread hands its exception to a
// future; the test thread rethrows it and reads it (e.code()); the context
// thread then drops the coroutine's own reference, the last one, and frees
// the object. That free is ordered after the reads by the count, but is
// reported as a race with them. Only reports with exception_ptr's release
// in a stack are suppressed.
extern "C" const char* __tsan_default_suppressions()
{
  return "race:std::__exception_ptr::exception_ptr::_M_release\n";
}

#include "vmx-tests.h"
void vmx_entry_tests(void) {}

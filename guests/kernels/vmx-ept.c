#include "vmx-tests.h"
void vmx_ept_tests(void) {}

#include "vmx-tests.h"
void vmx_exit_tests(void) {}

#include "vmx-tests.h"
void vmx_event_tests(void) {}

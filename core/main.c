#include <czmq.h>
int main (void) { return 0; }

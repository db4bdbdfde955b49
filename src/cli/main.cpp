// Entry point of the crowdgate command; the commands live in their own files.
#include <iostream>

int main(int argc, char** argv) {
  std::cerr << "crowdgate: under construction\n";
  return 1;
}

// An outside program that reads a CSV through the installed runtime library.
#include <iostream>

#include <lepton/table.hpp>
#include <lepton/version.hpp>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: consumer FILE.csv\n";
    return 2;
  }
  const lepton::Table table = lepton::read_csv(argv[1]);
  std::cout << "lepton " << LEPTON_VERSION_STRING << " rows=" << table.rows()
            << " columns=" << table.columns() << "\n";
  return 0;
}

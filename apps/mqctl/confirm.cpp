#include "confirm.hpp"

#include <unistd.h>

#include <iostream>

#include "mq/error.hpp"

namespace mqctl {

void confirm(const std::string& question, bool yes) {
    if (yes) return;
    if (!isatty(STDIN_FILENO))
        throw mq::ValidationError(question + " Refusing without --yes when not on a terminal.");
    std::cerr << question << " [y/N] " << std::flush;
    std::string answer;
    std::getline(std::cin, answer);
    if (answer != "y" && answer != "Y" && answer != "yes") throw Aborted();
}

}  // namespace mqctl

// Reads the pickle stream of a PyTorch checkpoint (data.pkl) into a pt::Document. It is
// an interpreter of the opcodes torch.save writes (protocol 2, plus the protocol 4
// framing and short forms), not of Python: a GLOBAL names a class or function, and only
// the allowed ones are accepted; each is turned into data (a dict, an object with
// attributes, a tensor view). Anything else is refused with one line naming it.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "txl/convert/pickle_value.h"

namespace txl::pt {

// The globals a checkpoint may name ("module.name").
const std::vector<std::string>& allowed_globals();

// Parses `bytes`; `what` names the stream in messages. Throws txl::Error on anything
// malformed or not allowed.
void read_pickle(std::span<const uint8_t> bytes, const std::string& what, Document& doc);

}  // namespace txl::pt

// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @notice A minimal contract wallet for tests (EIP-1271): a signature is its own when the owner's
/// key made it, as with a one-owner Safe.  ``validAnswer`` is what it returns for a valid one:
/// the magic value ``0x1626ba7e``, or anything else to stand for a wallet that answers wrongly.
contract TestSmartWallet is IERC1271 {
    address public immutable owner;
    bytes4 private immutable _validAnswer;

    constructor(address owner_, bytes4 validAnswer) {
        owner = owner_;
        _validAnswer = validAnswer;
    }

    /// @dev Reverts on a malformed signature (OpenZeppelin's ``ECDSA.recover``), as many wallets do.
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        return ECDSA.recover(hash, signature) == owner ? _validAnswer : bytes4(0xffffffff);
    }
}

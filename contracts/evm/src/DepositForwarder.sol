// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @notice What a forwarder needs of the vault: the two deposit entry points.
interface IDepositSink {
    function deposit(bytes32 userId) external payable;

    function depositToken(bytes32 userId, IERC20 token, uint256 amount) external;
}

/// @notice One user's deposit address. The vault deploys it with CREATE2 (salt = user id), so the
/// address is known, and can receive funds, before any code is there; a sweep moves whatever it
/// holds into the vault credited to that user id. Sweeps are open to anyone: the funds can only go
/// to the vault, and only to this user.
contract DepositForwarder {
    using SafeERC20 for IERC20;

    IDepositSink public immutable vault;
    bytes32 public immutable userId;

    constructor(bytes32 userId_) {
        vault = IDepositSink(msg.sender);
        userId = userId_;
    }

    /// @dev Accepts native coin without forwarding it: a sender limited to 2,300 gas
    /// (Solidity's `transfer`) could not pay for the vault's deposit. A sweep moves it.
    receive() external payable {}

    function sweepNative() external returns (uint256 amount) {
        amount = address(this).balance;
        if (amount != 0) vault.deposit{value: amount}(userId);
    }

    function sweepToken(IERC20 token) external returns (uint256 amount) {
        amount = token.balanceOf(address(this));
        if (amount != 0) {
            token.forceApprove(address(vault), amount);
            vault.depositToken(userId, token, amount);
        }
    }
}

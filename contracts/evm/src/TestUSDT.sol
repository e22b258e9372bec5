// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice A stand-in for USDT in tests: anyone may mint, and the decimals are chosen at deployment
/// (6 like Ethereum's USDT, 18 like BNB Chain's BSC-USD), so one vault is tested against both.
contract TestUSDT is ERC20 {
    uint8 private immutable _decimals;

    constructor(uint8 decimals_) ERC20("Test Tether USD", "USDT") {
        _decimals = decimals_;
    }

    function decimals() public view override returns (uint8) {
        return _decimals;
    }

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
